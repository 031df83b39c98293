import HeraldCore
import HeraldPostgres
import Synchronization

/// Why a channel's postgres_changes bindings could not be subscribed; `message` is the `system` message text.
struct SubscriptionError: Error, Equatable {
    var message: String
}

/// The tables with change capture enabled, with their columns, cached from `realtime.captured_tables()`.
/// Bindings are resolved against it at join time: wildcards expand, filters are parsed and typed once.
actor TableCatalog {
    struct Table: Sendable, Equatable {
        var schema: String
        var name: String
        var columns: [Column]
    }

    private let load: @Sendable () async throws -> [Table]
    private let canAssumeRole: @Sendable (String) async throws -> Bool
    /// Roles known to exist (and to be assumable by Herald), for the current generation.
    private var assumableRoles: Set<String> = []
    private var rolesGeneration = -1
    private var tables: [Table]?
    private var loadedGeneration = 0
    /// Bumped (from any thread) when capture is enabled or disabled; a stale cache is reloaded on next use.
    private nonisolated let generation = Atomic<Int>(0)
    /// Run after each load, before the tables are used (the replication source publishes them).
    private var publish: (@Sendable () async -> Void)?

    init(load: @escaping @Sendable () async throws -> [Table], canAssumeRole: @escaping @Sendable (String) async throws -> Bool) {
        self.load = load
        self.canAssumeRole = canAssumeRole
    }

    static func canAssumeRole(_ role: String, in database: PostgresClient) async throws -> Bool {
        try await database.query("SELECT realtime.can_assume_role($1)", [role]).values.first?.first == "t"
    }

    static func load(from database: PostgresClient) async throws -> [Table] {
        let rows = try await database.query("SELECT schema_name, table_name, columns::text FROM realtime.captured_tables()")
        return rows.values.compactMap { row in
            guard row.count == 3, let schema = row[0], let name = row[1], let columnsText = row[2],
                case .array(let columnValues)? = try? JSONValue.parse(columnsText)
            else { return nil }
            let columns = columnValues.compactMap { value -> Column? in
                guard case .string(let name)? = value["name"], case .string(let type)? = value["type"] else { return nil }
                return Column(name: name, type: type)
            }
            return Table(schema: schema, name: name, columns: columns)
        }
    }

    nonisolated func invalidate() { generation.add(1, ordering: .relaxed) }

    func publishBeforeUse(_ publish: @escaping @Sendable () async -> Void) { self.publish = publish }

    /// All-or-nothing, like upstream's subscription transaction: the first refused binding refuses the channel, and
    /// so does a JWT role the database does not have (Herald assumes it to check what the channel may read).
    func resolve(_ requests: [BindingRequest], role: String) async -> Result<[PostgresBinding], SubscriptionError> {
        if !requests.isEmpty, let refusal = await checkRole(role, for: requests[0]) { return .failure(refusal) }
        var bindings: [PostgresBinding] = []
        var reloaded = false
        for request in requests {
            guard case .valid(let event, let schema, let table, let filterText) = request.shape else {
                if case .invalid(let message) = request.shape { return .failure(SubscriptionError(message: message)) }
                continue
            }
            let conditions: [FilterCondition]
            do {
                conditions = try FilterParser.parse(filterText ?? "")
            } catch {
                return .failure(SubscriptionError(message: error.message))
            }
            var matched: [Table]
            do {
                matched = try await tables(matching: schema, table)
                if matched.isEmpty && !reloaded {
                    // Capture may have been enabled since the cache was filled.
                    reloaded = true
                    invalidate()
                    matched = try await tables(matching: schema, table)
                }
            } catch {
                return .failure(SubscriptionError(message: "Realtime was unable to connect to the project database"))
            }
            guard !matched.isEmpty else {
                let message = SubscriptionErrorMessage.notEnabled(event: event, schema: schema, table: table, filters: conditions)
                return .failure(SubscriptionError(message: message))
            }
            let isWildcard = schema == "*" || table == "*"
            for match in matched {
                let filter: BoundFilter
                do {
                    filter = try BoundFilter(conditions, columns: match.columns)
                } catch {
                    let message = SubscriptionErrorMessage.exception(event: event, schema: schema, table: table, filters: conditions, error: error)
                    return .failure(SubscriptionError(message: message))
                }
                // Wildcard bindings without a filter stay wildcards, so tables enabled later are covered too.
                if isWildcard && conditions.isEmpty {
                    bindings.append(PostgresBinding(id: request.id, event: event, schema: schema, table: table, filter: filter))
                    break
                }
                bindings.append(PostgresBinding(id: request.id, event: event, schema: match.schema, table: match.name, filter: filter))
            }
        }
        return .success(bindings)
    }

    private func checkRole(_ role: String, for request: BindingRequest) async -> SubscriptionError? {
        let current = generation.load(ordering: .relaxed)
        if rolesGeneration != current {
            assumableRoles = []
            rolesGeneration = current
        }
        if assumableRoles.contains(role) { return nil }
        do {
            guard try await canAssumeRole(role) else {
                guard case .valid(let event, let schema, let table, let filterText) = request.shape else {
                    return SubscriptionError(message: "role \"\(role)\" does not exist")
                }
                let conditions = (try? FilterParser.parse(filterText ?? "")) ?? []
                let error = FilterBindingError(sqlState: "42704", conditionName: "undefined_object", message: "role \"\(role)\" does not exist")
                return SubscriptionError(message: SubscriptionErrorMessage.exception(event: event, schema: schema, table: table, filters: conditions, error: error))
            }
            assumableRoles.insert(role)
            return nil
        } catch {
            return SubscriptionError(message: "Realtime was unable to connect to the project database")
        }
    }

    private func tables(matching schema: String, _ table: String) async throws -> [Table] {
        let current = generation.load(ordering: .relaxed)
        let all: [Table]
        if let tables, loadedGeneration == current {
            all = tables
        } else {
            all = try await load()
            await publish?()
            tables = all
            loadedGeneration = current
        }
        return all.filter { (schema == "*" || $0.schema == schema) && (table == "*" || $0.name == table) }
    }
}
