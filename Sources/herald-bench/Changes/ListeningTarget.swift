import Foundation
import HeraldPostgres

/// A WebSocket fan-out the change scenarios' subscribers connect to: `herald serve` with one change source, or the
/// Python LISTEN/NOTIFY peer (Benchmarks/python-peer). A child process pinned to the server's core, logging into
/// the scenario's folder; `stop()` sends SIGTERM, then SIGKILL after 10 s.
final class ListeningTarget: Sendable {
    let name: String
    private let child: ChildServer

    private init(name: String, child: ChildServer) {
        self.name = name
        self.child = child
    }

    /// `herald serve --source <source>` against `database`.
    static func herald(_ herald: String, source: String, database: ChangeDatabase, secret: String, cpu: Int?) async throws -> ListeningTarget {
        let port = try LocalPostgresCluster.freePort()
        let arguments = [
            "serve", "--host", "127.0.0.1", "--port", String(port), "--database-url", database.url,
            "--jwt-secret", secret, "--log-level", "warning", "--source", source,
        ]
        return try await start(name: "herald-\(source)", executable: herald, arguments: arguments, port: port, database: database, cpu: cpu)
    }

    /// The Python peer, run by the venv's interpreter.
    static func pythonPeer(python: String, script: String, database: ChangeDatabase, cpu: Int?) async throws -> ListeningTarget {
        let port = try LocalPostgresCluster.freePort()
        return try await start(name: "python-peer", executable: python, arguments: [script, database.url, String(port)], port: port, database: database, cpu: cpu)
    }

    private static func start(name: String, executable: String, arguments: [String], port: Int, database: ChangeDatabase, cpu: Int?) async throws -> ListeningTarget {
        // The folder is the database's: the scenario removes it.
        let child = try await ChildServer.start(
            executable, arguments, cpu: cpu, port: port, directory: database.directory, logName: "\(name).log", ownsDirectory: false
        )
        return ListeningTarget(name: name, child: child)
    }

    var port: Int { child.port }
    var pid: Int32 { child.process.processIdentifier }
    var log: String { child.log }

    func sample() -> ProcessSample? { ProcessSample.read(pid: pid) }

    func stop() { child.stop() }
}
