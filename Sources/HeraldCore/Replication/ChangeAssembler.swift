/// Turns `pgoutput` messages into ``ReplicationEvent``s carrying the same ``Change`` values the trigger source
/// builds from `row_to_json`: records keyed by column name in column order, typed JSON values, commit time.
///
/// Old records follow the table's replica identity, as the trigger source's `realtime.capture_changes()`:
/// default or index identity → the key columns (taken from the new row when the key did not change, since
/// PostgreSQL then sends no old key), FULL → the whole old row, NOTHING → `{}`.
///
/// A TOASTed value that an UPDATE left unchanged is not sent by PostgreSQL (the 'u' marker): it is filled
/// from the old row when that row was sent whole (FULL identity) or holds it as a key, otherwise the column is
/// left out of the record. It is never sent as a wrong value.
///
/// Each change carries its ``ChangePosition``: the commit LSN and its index among the transaction's row events.
///
/// After a reconnection (``connectionRestarted()``), transactions the server sends again are not delivered
/// twice: those that ended at or before the last delivered commit are skipped, and one that was cut in the
/// middle resumes after its last delivered change.
public struct ChangeAssembler: Sendable {
    private struct Table: Sendable {
        var message: PgOutputMessage.Relation
        var columns: [Column]
        var conversions: [ValueConversion]
        var keyIndices: [Int]
    }

    private struct OpenTransaction: Sendable {
        var begin: TransactionBegin
        /// Row events of this transaction delivered so far (or skipped because they were delivered before).
        var rowEvents = 0
        /// Row events still to skip: they were delivered before the connection broke.
        var replayedRowEvents = 0
        /// The whole transaction was delivered before the connection broke.
        var isReplayed = false
    }

    /// What Herald knows about column types; fill it (``learn(types:)``) before handing over a Relation
    /// message whose ``missingTypes(for:)`` is not empty.
    public private(set) var types: PgTypeCatalog
    private var tables: [UInt32: Table] = [:]
    private var transaction: OpenTransaction?
    /// Set by a restart in the middle of a transaction: its commit LSN and how many row events were delivered.
    private var interrupted: (commitLSN: LSN, rowEvents: Int)?
    /// The end of the last commit delivered.
    public private(set) var deliveredThrough: LSN = .zero

    public init(types: PgTypeCatalog = PgTypeCatalog()) {
        self.types = types
    }

    /// `true` between a delivered (or replayed) Begin and its Commit.
    public var isInTransaction: Bool { transaction != nil }

    /// The type OIDs to look up before `relation` can be handed over.
    public func missingTypes(for relation: PgOutputMessage.Relation) -> [UInt32] {
        types.missing(relation.columns.map(\.typeOID))
    }

    public mutating func learn(types entries: [PgTypeCatalog.Entry]) {
        types.add(entries)
    }

    /// The connection broke: the next connection describes its relations again and may send again
    /// transactions that were already delivered.
    public mutating func connectionRestarted() {
        tables = [:]
        if let transaction, !transaction.isReplayed {
            interrupted = (transaction.begin.commitLSN, transaction.rowEvents)
        }
        transaction = nil
    }

    /// The event `message` produces, if any.
    /// - Throws: ``ReplicationDecodingError`` when the stream is inconsistent (a change outside a transaction,
    ///   an unknown relation, a tuple that does not match its relation, a streamed transaction).
    public mutating func consume(_ message: PgOutputMessage) throws(ReplicationDecodingError) -> ReplicationEvent? {
        switch message {
        case .begin(let begin):
            return self.begin(begin)
        case .commit(let commit):
            guard let open = transaction else { throw ReplicationDecodingError("a commit outside a transaction") }
            transaction = nil
            guard !open.isReplayed else { return nil }
            deliveredThrough = commit.endLSN
            return .commit(
                TransactionCommit(
                    commitLSN: commit.commitLSN,
                    endLSN: commit.endLSN,
                    commitTimestamp: PostgresEpoch.unixMicroseconds(commit.commitTime)
                )
            )
        case .relation(let relation):
            tables[relation.id] = table(relation)
            return nil
        case .insert(let insert):
            guard try takeRowEvent() else { return nil }
            let table = try self.table(insert.relationID)
            return .change(try change(.insert, table, record: try row(insert.newTuple, table), oldRecord: nil))
        case .update(let update):
            guard try takeRowEvent() else { return nil }
            let table = try self.table(update.relationID)
            let oldRecord: JSONObject
            var fill: [TupleValue]?
            switch update.oldTuple {
            case .full(let old)?:
                fill = old
                oldRecord = try row(old, table)
            case .key(let old)?:
                fill = old
                oldRecord = try row(old, table, only: table.keyIndices)
            case nil:
                oldRecord = try row(update.newTuple, table, only: table.keyIndices)
            }
            let record = try row(update.newTuple, table, fill: fill)
            return .change(try change(.update, table, record: record, oldRecord: oldRecord))
        case .delete(let delete):
            guard try takeRowEvent() else { return nil }
            let table = try self.table(delete.relationID)
            let oldRecord: JSONObject
            switch delete.oldTuple {
            case .full(let old): oldRecord = try row(old, table)
            case .key(let old): oldRecord = try row(old, table, only: table.keyIndices)
            }
            return .change(try change(.delete, table, record: nil, oldRecord: oldRecord))
        case .truncate(let truncate):
            guard try takeRowEvent() else { return nil }
            var names: [TableName] = []
            for id in truncate.relationIDs {
                let table = try self.table(id)
                names.append(TableName(schema: table.message.namespace, table: table.message.name))
            }
            return .truncate(names)
        case .origin, .type, .message:
            // Herald relays every committed change whatever its origin, reads types from pg_type, and ignores
            // emitted messages (it does not ask for them).
            return nil
        case .streamStart, .streamStop, .streamCommit, .streamAbort, .streamed:
            throw ReplicationDecodingError("a streamed in-progress transaction, which protocol version 1 does not send")
        }
    }

    private mutating func begin(_ begin: PgOutputMessage.Begin) -> ReplicationEvent? {
        let started = TransactionBegin(
            transactionID: begin.transactionID,
            commitLSN: begin.finalLSN,
            commitTimestamp: PostgresEpoch.unixMicroseconds(begin.commitTime)
        )
        var open = OpenTransaction(begin: started)
        defer {
            transaction = open
            interrupted = nil
        }
        if begin.finalLSN < deliveredThrough {
            open.isReplayed = true
            return nil
        }
        if let interrupted, interrupted.commitLSN == begin.finalLSN {
            open.replayedRowEvents = interrupted.rowEvents
            return nil
        }
        return .begin(started)
    }

    /// Counts a row event of the open transaction; `false` when it was delivered before the connection broke.
    private mutating func takeRowEvent() throws(ReplicationDecodingError) -> Bool {
        guard var open = transaction else { throw ReplicationDecodingError("a change outside a transaction") }
        defer { transaction = open }
        if open.isReplayed { return false }
        open.rowEvents += 1
        if open.replayedRowEvents > 0 {
            open.replayedRowEvents -= 1
            return false
        }
        return true
    }

    private func table(_ relation: PgOutputMessage.Relation) -> Table {
        Table(
            message: relation,
            columns: relation.columns.map { Column(name: $0.name, type: types.name(of: $0.typeOID)) },
            conversions: relation.columns.map { types.conversion(of: $0.typeOID) },
            keyIndices: relation.columns.indices.filter { relation.columns[$0].isKey }
        )
    }

    private func table(_ id: UInt32) throws(ReplicationDecodingError) -> Table {
        guard let table = tables[id] else { throw ReplicationDecodingError("a change to relation \(id), which was not described") }
        return table
    }

    private func change(_ type: ChangeType, _ table: Table, record: JSONObject?, oldRecord: JSONObject?) throws(ReplicationDecodingError) -> Change {
        guard let open = transaction else { throw ReplicationDecodingError("a change outside a transaction") }
        return Change(
            schema: table.message.namespace,
            table: table.message.name,
            type: type,
            commitTimestamp: open.begin.commitTimestamp,
            columns: table.columns,
            record: record,
            oldRecord: oldRecord,
            // Counted over every row event of the transaction (truncates too), so a re-read numbers alike.
            position: .wal(commitLSN: open.begin.commitLSN, index: UInt32(truncatingIfNeeded: open.rowEvents - 1)),
            transactionID: open.begin.transactionID
        )
    }

    /// The tuple as a record: every column (or those at `only`), unchanged TOAST values taken from `fill`.
    private func row(_ tuple: [TupleValue], _ table: Table, only: [Int]? = nil, fill: [TupleValue]? = nil) throws(ReplicationDecodingError) -> JSONObject {
        guard tuple.count == table.columns.count, fill.map({ $0.count == tuple.count }) ?? true else {
            throw ReplicationDecodingError(
                "a tuple of \(tuple.count) values for \(table.message.namespace).\(table.message.name), which has \(table.columns.count) columns"
            )
        }
        var record = JSONObject()
        for index in only ?? Array(table.columns.indices) {
            var value = tuple[index]
            if value == .unchangedToast, let fill, case .text = fill[index] { value = fill[index] }
            switch value {
            case .null: record.append(table.columns[index].name, .null)
            case .text(let text): record.append(table.columns[index].name, table.conversions[index].json(text))
            case .unchangedToast: continue
            }
        }
        return TriggerPayload.normalize(record, columns: table.columns)
    }
}
