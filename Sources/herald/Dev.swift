import ArgumentParser
import Foundation
import HeraldCore
import HeraldPostgres
import HeraldServer

/// The embedded default: a private PostgreSQL under `.herald/`, migrated, and Herald serving in front of it.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run Herald with a private PostgreSQL cluster under .herald/ (created on first run)."
    )

    static let directory = URL(fileURLWithPath: ".herald")
    static let secretFile = directory.appendingPathComponent("jwt-secret")

    @OptionGroup var logging: LoggingOptions
    @Option(name: .long, help: "Port Herald listens on.") var port: Int = 4000
    @Option(name: .long, help: "Port of the private PostgreSQL (127.0.0.1 only).") var databasePort: Int = 54329
    @Option(name: .long, help: "Folder of the application's NNNN_name.sql migrations.") var migrations: String = "migrations"

    func run() async throws {
        let logger = try logging.makeLogger()
        let cluster = LocalPostgresCluster(directory: Self.directory.appendingPathComponent("postgres"), port: databasePort)
        let databaseURL = cluster.databaseURL()
        try await Self.failingCleanly {
            say("starting PostgreSQL in \(Self.directory.path)/postgres (port \(databasePort))…")
            try cluster.start()
        }
        defer {
            do {
                try cluster.stop()
                say("PostgreSQL stopped")
            } catch {
                say("could not stop PostgreSQL: \(error)")
            }
        }
        try await Self.failingCleanly {
            let migrator = try HeraldMigrations.migrator(appMigrations: URL(fileURLWithPath: migrations))
            let applied = try await PostgresClient.once(databaseURL) { try migrator.migrate(on: $0) }
            for name in applied { say("applied \(name)") }
        }
        let secret = try Self.developmentSecret()
        let now = Int64(Date().timeIntervalSince1970)
        let token = try await TokenIssuer.sign(
            TokenIssuer.claims(role: "authenticated", subject: nil, expiresIn: 86_400, now: now),
            secret: secret
        )
        var configuration = ServerConfiguration(host: "127.0.0.1", port: port, databaseURL: databaseURL, jwtSecret: secret)
        // The private cluster runs with wal_level=logical: changes come from the replication slot.
        configuration.changeSource.kind = .replication
        try await Self.failingCleanly {
            try await HeraldServer.run(configuration, logger: logger) { [databaseURL] port in
                say(
                    """

                    Herald is running.
                      WebSocket  ws://127.0.0.1:\(port)/socket/websocket   (supabase-js: http://127.0.0.1:\(port))
                      Database   \(databaseURL)
                      Token      \(token)
                                 (role authenticated, valid 24 h; `herald token` makes more)
                    Ctrl-C stops Herald and PostgreSQL.

                    """
                )
            }
        }
    }

    /// A random secret kept in `.herald/jwt-secret`, so tokens stay valid across restarts.
    static func developmentSecret() throws -> String {
        if let existing = try? String(contentsOf: secretFile, encoding: .utf8), !existing.isEmpty {
            return existing.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var generator = SystemRandomNumberGenerator()
        let secret = Base64URL.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try secret.write(to: secretFile, atomically: true, encoding: .utf8)
        return secret
    }
}
