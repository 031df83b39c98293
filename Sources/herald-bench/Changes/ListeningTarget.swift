import Foundation
import HeraldPostgres

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A WebSocket fan-out the change scenarios' subscribers connect to: `herald serve` with one change source, or the
/// Python LISTEN/NOTIFY peer (Benchmarks/python-peer). A child process pinned to the server's core, logging into
/// the scenario's folder; `stop()` sends SIGTERM, then SIGKILL after 10 s.
final class ListeningTarget: Sendable {
    let name: String
    let port: Int
    let pid: Int32
    private let process: Process
    private let logFile: URL

    private init(name: String, port: Int, process: Process, logFile: URL) {
        self.name = name
        self.port = port
        self.pid = process.processIdentifier
        self.process = process
        self.logFile = logFile
    }

    /// `herald serve --source <source>` against `database`.
    static func herald(_ herald: String, source: String, database: ChangeDatabase, secret: String, cpu: Int?) async throws -> ListeningTarget {
        let port = try freePort()
        let arguments = [
            "serve", "--host", "127.0.0.1", "--port", String(port), "--database-url", database.url,
            "--jwt-secret", secret, "--log-level", "warning", "--source", source,
        ]
        return try await start(name: "herald-\(source)", executable: herald, arguments: arguments, port: port, folder: database.directory, cpu: cpu)
    }

    /// The Python peer, run by the venv's interpreter.
    static func pythonPeer(python: String, script: String, database: ChangeDatabase, cpu: Int?) async throws -> ListeningTarget {
        let port = try freePort()
        return try await start(name: "python-peer", executable: python, arguments: [script, database.url, String(port)], port: port, folder: database.directory, cpu: cpu)
    }

    private static func freePort() throws -> Int { try LocalPostgresCluster.freePort() }

    private static func start(name: String, executable: String, arguments: [String], port: Int, folder: URL, cpu: Int?) async throws -> ListeningTarget {
        let process = Subprocess.make(executable, arguments, cpu: cpu)
        let log = folder.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try await Subprocess.launch(process)
        let target = ListeningTarget(name: name, port: port, process: process, logFile: log)
        let deadline = Monotonic.nanoseconds() + 30_000_000_000
        while !Listening.accepts(port: port) {
            guard process.isRunning, Monotonic.nanoseconds() < deadline else {
                target.stop()
                throw HarnessFailure("\(name) did not listen on port \(port):\n\(target.log.suffix(2_000))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return target
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func sample() -> ProcessSample? { ProcessSample.read(pid: pid) }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        if !Subprocess.wait(for: process, timeout: 10) { kill(pid, SIGKILL) }
    }
}
