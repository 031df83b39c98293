import ArgumentParser
import Foundation
import HeraldPostgres
import HeraldServer

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply Herald's SQL and the application's migrations.",
        subcommands: [Apply.self, Status.self, New.self],
        defaultSubcommand: Apply.self
    )

    struct Folder: ParsableArguments {
        @Option(name: .long, help: "Folder of the application's NNNN_name.sql migrations.")
        var migrations: String = "migrations"

        var url: URL { URL(fileURLWithPath: migrations) }
    }

    struct Apply: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "apply", abstract: "Apply pending migrations (the default).")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var folder: Folder

        func run() async throws {
            let url = try database.resolved()
            let applied = try await Self.failingCleanly {
                let migrator = try HeraldMigrations.migrator(appMigrations: folder.url)
                return try await PostgresClient.once(url) { try migrator.migrate(on: $0) }
            }
            print(applied.isEmpty ? "Nothing to apply: the database is up to date." : applied.map { "applied \($0)" }.joined(separator: "\n"))
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List applied and pending migrations.")
        @OptionGroup var database: DatabaseOptions
        @OptionGroup var folder: Folder

        func run() async throws {
            let url = try database.resolved()
            let status = try await Self.failingCleanly {
                let migrator = try HeraldMigrations.migrator(appMigrations: folder.url)
                return try await PostgresClient.once(url) { try migrator.status(on: $0) }
            }
            print(status)
        }
    }

    struct New: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create the next numbered migration file.")
        @OptionGroup var folder: Folder
        @Argument(help: "What the migration does, e.g. add_reactions.") var name: String

        func run() throws {
            do {
                print(try Migrator.newMigration(name: name, in: folder.url).path)
            } catch {
                throw CommandFailure("\(error)")
            }
        }
    }
}

extension PostgresClient {
    /// Opens a connection, runs `body` on it, closes it.
    static func once<T: Sendable>(_ url: String, _ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        return try await client.withConnection(body)
    }
}
