/// One postgres_changes binding of a subscriber, bound to its table.
public struct PostgresBinding: Sendable {
    /// The id echoed in the join reply and sent in each event's `ids`.
    public var id: Int
    /// nil for `"*"`.
    public var event: ChangeType?
    /// May be `"*"`.
    public var schema: String
    /// May be `"*"`.
    public var table: String
    /// The AND-ed conditions, bound to the table's columns.
    public var filter: BoundFilter

    public init(id: Int, event: ChangeType?, schema: String, table: String, filter: BoundFilter = .matchAll) {
        self.id = id
        self.event = event
        self.schema = schema
        self.table = table
        self.filter = filter
    }

    /// Whether a change of this type on a row with this image is delivered for the binding (the table is
    /// the caller's business).
    func matches(_ type: ChangeType, row: JSONObject) -> Bool {
        (event == nil || event == type) && filter.matches(row)
    }
}

/// The fan-out index of postgres_changes bindings: finds the subscribers of a change without looking at
/// every subscriber. Bindings are grouped by (schema, table), wildcards in their own groups; inside a group,
/// a binding with a plain `eq` condition is filed under that condition's value (e.g. all `room_id=eq.<uuid>`
/// bindings by uuid), so a change only evaluates the bindings filed under its own row's value plus the
/// bindings without such a condition.
public struct PostgresBindingIndex: Sendable {
    private struct TableKey: Hashable, Sendable {
        var schema: String
        var table: String
    }

    private struct Entry: Sendable {
        /// Position in the subscriber's binding list, which orders its `ids`.
        var ordinal: Int
        var binding: PostgresBinding
    }

    private typealias EntriesBySubscriber = [SubscriberID: [Entry]]

    private struct Bucket: Sendable {
        var unkeyed: EntriesBySubscriber = [:]
        var keyed: [ColumnKey: [FilterValue: EntriesBySubscriber]] = [:]
        /// Unkeyed entries with a filter: while there are none (and nothing keyed), the row does not matter.
        var filteredUnkeyed = 0

        var isEmpty: Bool { unkeyed.isEmpty && keyed.isEmpty }
        var ignoresRows: Bool { keyed.isEmpty && filteredUnkeyed == 0 }

        mutating func remove(_ subscriber: SubscriberID, key: (column: ColumnKey, value: FilterValue)?) {
            guard let (column, value) = key else {
                filteredUnkeyed -= unkeyed[subscriber]?.count { !$0.binding.filter.isEmpty } ?? 0
                unkeyed[subscriber] = nil
                return
            }
            keyed[column]?[value]?[subscriber] = nil
            if keyed[column]?[value]?.isEmpty == true { keyed[column]?[value] = nil }
            if keyed[column]?.isEmpty == true { keyed[column] = nil }
        }
    }

    /// Where a subscriber has entries, so that removal touches only those groups.
    private struct Location: Hashable, Sendable {
        var table: TableKey
        var column: ColumnKey?
        var value: FilterValue?

        var key: (column: ColumnKey, value: FilterValue)? {
            guard let column, let value else { return nil }
            return (column, value)
        }
    }

    private struct Hit {
        var subscriber: SubscriberID
        var ordinal: Int
        var id: Int
    }

    private var buckets: [TableKey: Bucket] = [:]
    private var locations: [SubscriberID: [Location]] = [:]

    public init() {}

    public var isEmpty: Bool { buckets.isEmpty }

    /// Files the subscriber's bindings, replacing any it had.
    public mutating func insert(_ subscriber: SubscriberID, bindings: [PostgresBinding]) {
        remove(subscriber)
        guard !bindings.isEmpty else { return }
        var placed: [Location] = []
        for (ordinal, binding) in bindings.enumerated() {
            let table = TableKey(schema: binding.schema, table: binding.table)
            let entry = Entry(ordinal: ordinal, binding: binding)
            let location: Location
            if let (column, value) = binding.filter.equalityKey {
                buckets[table, default: Bucket()].keyed[column, default: [:]][value, default: [:]][subscriber, default: []].append(entry)
                location = Location(table: table, column: column, value: value)
            } else {
                buckets[table, default: Bucket()].unkeyed[subscriber, default: []].append(entry)
                if !binding.filter.isEmpty { buckets[table, default: Bucket()].filteredUnkeyed += 1 }
                location = Location(table: table)
            }
            if !placed.contains(location) { placed.append(location) }
        }
        locations[subscriber] = placed
    }

    /// Drops all the subscriber's bindings; emptied groups are removed.
    public mutating func remove(_ subscriber: SubscriberID) {
        guard let placed = locations.removeValue(forKey: subscriber) else { return }
        for location in placed {
            buckets[location.table]?.remove(subscriber, key: location.key)
            if buckets[location.table]?.isEmpty == true { buckets[location.table] = nil }
        }
    }

    /// Whether every change of the table matches the same subscribers whatever its row (none of the bindings that can
    /// match it filters on columns), so that one match may serve all its changes of a type until the index changes.
    public func matchIgnoresRows(schema: String, table: String) -> Bool {
        Self.candidateTables(schema, table).allSatisfy { buckets[$0]?.ignoresRows ?? true }
    }

    private static func candidateTables(_ schema: String, _ table: String) -> [TableKey] {
        [TableKey(schema: schema, table: table), TableKey(schema: schema, table: "*"), TableKey(schema: "*", table: table), TableKey(schema: "*", table: "*")]
    }

    /// The subscribers with at least one binding matching the change, each with the ids of its matching
    /// bindings in binding order, without duplicates; ordered by subscriber id. DELETE is matched against the
    /// old row image, INSERT and UPDATE against the new one.
    public func match(_ change: Change) -> [(subscriber: SubscriberID, ids: [Int])] {
        let row = (change.type == .delete ? change.oldRecord : change.record) ?? JSONObject()
        var hits: [Hit] = []
        for table in Self.candidateTables(change.schema, change.table) {
            guard let bucket = buckets[table] else { continue }
            collect(bucket.unkeyed, change.type, row, into: &hits)
            for (column, byValue) in bucket.keyed {
                guard let json = row[column.name], case .value(let value) = RowValue.decode(json, as: column.type),
                    let candidates = byValue[value]
                else { continue }
                collect(candidates, change.type, row, into: &hits)
            }
        }
        guard !hits.isEmpty else { return [] }
        hits.sort { ($0.subscriber.rawValue, $0.ordinal) < ($1.subscriber.rawValue, $1.ordinal) }
        var result: [(subscriber: SubscriberID, ids: [Int])] = []
        for hit in hits {
            if let last = result.last, last.subscriber == hit.subscriber {
                if !last.ids.contains(hit.id) { result[result.count - 1].ids.append(hit.id) }
            } else {
                result.append((hit.subscriber, [hit.id]))
            }
        }
        return result
    }

    private func collect(_ entries: EntriesBySubscriber, _ type: ChangeType, _ row: JSONObject, into hits: inout [Hit]) {
        for (subscriber, list) in entries {
            for entry in list where entry.binding.matches(type, row: row) {
                hits.append(Hit(subscriber: subscriber, ordinal: entry.ordinal, id: entry.binding.id))
            }
        }
    }

    /// Group counts, for tests that check removal leaves nothing behind.
    var storageCounts: (tables: Int, keyedColumns: Int, keyedValues: Int, subscriberLists: Int) {
        var columns = 0
        var values = 0
        var lists = 0
        for bucket in buckets.values {
            lists += bucket.unkeyed.count
            columns += bucket.keyed.count
            for byValue in bucket.keyed.values {
                values += byValue.count
                lists += byValue.values.reduce(0) { $0 + $1.count }
            }
        }
        return (buckets.count, columns, values, lists)
    }
}
