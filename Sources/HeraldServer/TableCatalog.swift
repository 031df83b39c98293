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
    private var tables: [Table]?
    private var loadedGeneration = 0
    /// Bumped (from any thread) when capture is enabled or disabled; a stale cache is reloaded on next use.
    private nonisolated let generation = Atomic<Int>(0)

    init(load: @escaping @Sendable () async throws -> [Table]) {
        self.load = load
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

    /// All-or-nothing, like upstream's subscription transaction: the first refused binding refuses the channel.
    func resolve(_ requests: [BindingRequest]) async -> Result<[PostgresBinding], SubscriptionError> {
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

    private func tables(matching schema: String, _ table: String) async throws -> [Table] {
        let current = generation.load(ordering: .relaxed)
        let all: [Table]
        if let tables, loadedGeneration == current {
            all = tables
        } else {
            all = try await load()
            tables = all
            loadedGeneration = current
        }
        return all.filter { (schema == "*" || $0.schema == schema) && (table == "*" || $0.name == table) }
    }
}
