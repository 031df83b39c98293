import ArgumentParser
import HeraldPostgres

struct Tables: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn change capture on or off for tables.",
        subcommands: [Enable.self, Disable.self, List.self]
    )

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Capture changes of SCHEMA.TABLE.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The table, as schema.table.") var table: String

        func run() async throws {
            try await Tables.call("realtime.enable_capture", table, database)
            print("capturing changes of \(table)")
        }
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop capturing changes of SCHEMA.TABLE.")
        @OptionGroup var database: DatabaseOptions
        @Argument(help: "The table, as schema.table.") var table: String

        func run() async throws {
            try await Tables.call("realtime.disable_capture", table, database)
            print("no longer capturing changes of \(table)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the tables whose changes are captured.")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let url = try database.resolved()
            let rows = try await Self.failingCleanly {
                try await PostgresClient.once(url) {
                    try $0.execute("SELECT schema_name || '.' || table_name FROM realtime.captured_tables() ORDER BY 1")
                }
            }
            for row in rows.values { print(row[0] ?? "") }
        }
    }

    static func call(_ function: String, _ table: String, _ database: DatabaseOptions) async throws {
        let parts = table.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw CommandFailure("name the table as schema.table, got '\(table)'")
        }
        let url = try database.resolved()
        _ = try await failingCleanly {
            try await PostgresClient.once(url) { connection in
                // The name goes through regclass as a parameter: quoted identifiers work, nothing is spliced.
                let qualified = try connection.escapeIdentifier(String(parts[0])) + "." + connection.escapeIdentifier(String(parts[1]))
                return try connection.execute("SELECT \(function)($1::regclass)", params: [qualified])
            }
        }
    }
}
