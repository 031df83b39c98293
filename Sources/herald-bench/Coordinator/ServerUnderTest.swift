import Foundation
import HeraldPostgres
import Synchronization

/// A throwaway PostgreSQL (migrated with Herald's SQL) and `herald serve` in front of it as a child process,
/// pinned to its core, with a token its sockets can use. Everything lives in one temporary folder, removed by
/// `stop()`.
final class ServerUnderTest: TargetServer {
    let token: String
    private let child: ChildServer
    private let cluster: LocalPostgresCluster
    /// Held for the whole of `stop()`, which an interruption may call while the run's own cleanup does.
    private let stopped = Mutex(false)

    private init(token: String, child: ChildServer, cluster: LocalPostgresCluster) {
        self.token = token
        self.child = child
        self.cluster = cluster
    }

    static func start(herald: String, cpu: Int?) async throws -> ServerUnderTest {
        guard FileManager.default.isExecutableFile(atPath: herald) else {
            throw HarnessFailure("no herald executable at \(herald): build it first (swift build -c release --product herald) or pass --herald")
        }
        let directory = try ChildServer.makeDirectory("herald")
        let cluster = LocalPostgresCluster(
            directory: directory.appendingPathComponent("postgres"),
            port: try LocalPostgresCluster.freePort(),
            options: .init(durable: false)
        )
        do {
            try cluster.start()
            let databaseURL = cluster.databaseURL()
            // Herald's own SQL only: the folder of application migrations does not exist.
            let noMigrations = directory.appendingPathComponent("no-migrations").path
            _ = try await Subprocess.run(herald, ["migrate", "--database-url", databaseURL, "--migrations", noMigrations])
            let secret = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined(separator: "-")
            let token = try await Subprocess.run(herald, ["token", "--jwt-secret", secret, "--expires-in", "86400"])
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let port = try LocalPostgresCluster.freePort()
            // The folder also holds the cluster, which stops after Herald: `stop()` removes it.
            let child = try await ChildServer.start(
                herald,
                ["serve", "--host", "127.0.0.1", "--port", String(port), "--database-url", databaseURL, "--jwt-secret", secret, "--log-level", "warning"],
                cpu: cpu, port: port, directory: directory, logName: "herald.log", ownsDirectory: false
            )
            return ServerUnderTest(token: token, child: child, cluster: cluster)
        } catch {
            try? cluster.stop(immediately: true)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    var port: Int { child.port }
    var pid: Int32 { child.process.processIdentifier }
    var log: String { child.log }

    /// SIGTERM (graceful shutdown), SIGKILL after 10 s; then PostgreSQL stops and the folder goes.
    func stop() {
        stopped.withLock { stopped in
            guard !stopped else { return }
            stopped = true
            child.stop()
            try? cluster.stop(immediately: true)
            try? FileManager.default.removeItem(at: child.directory)
        }
    }
}
