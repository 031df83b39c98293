import Foundation
import HeraldPostgres
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A throwaway PostgreSQL (migrated with Herald's SQL) and `herald serve` in front of it as a child process,
/// pinned to its core, with a token its sockets can use. Everything lives in one temporary folder, removed by
/// `stop()`.
final class ServerUnderTest: Sendable {
    let port: Int
    let token: String
    let pid: Int32
    private let process: Process
    private let cluster: LocalPostgresCluster
    private let directory: URL
    /// Held for the whole of `stop()`, which an interruption may call while the run's own cleanup does.
    private let stopped = Mutex(false)

    private init(port: Int, token: String, process: Process, cluster: LocalPostgresCluster, directory: URL) {
        self.port = port
        self.token = token
        self.pid = process.processIdentifier
        self.process = process
        self.cluster = cluster
        self.directory = directory
    }

    static func start(herald: String, cpu: Int?) async throws -> ServerUnderTest {
        guard FileManager.default.isExecutableFile(atPath: herald) else {
            throw HarnessFailure("no herald executable at \(herald): build it first (swift build -c release --product herald) or pass --herald")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-bench-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
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
            let process = Subprocess.make(
                herald,
                [
                    "serve", "--host", "127.0.0.1", "--port", String(port), "--database-url", databaseURL,
                    "--jwt-secret", secret, "--log-level", "warning",
                ],
                cpu: cpu
            )
            let log = directory.appendingPathComponent("herald.log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            let logHandle = try FileHandle(forWritingTo: log)
            process.standardOutput = logHandle
            process.standardError = logHandle
            try await Subprocess.launch(process)
            let server = ServerUnderTest(port: port, token: token, process: process, cluster: cluster, directory: directory)
            do {
                try await server.waitUntilListening()
            } catch {
                server.stop()
                throw error
            }
            return server
        } catch {
            try? cluster.stop(immediately: true)
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    var log: String { (try? String(contentsOf: directory.appendingPathComponent("herald.log"), encoding: .utf8)) ?? "" }

    func sample() throws -> ProcessSample {
        guard let sample = ProcessSample.read(pid: pid) else { throw HarnessFailure("herald (pid \(pid)) is gone:\n\(log.suffix(2_000))") }
        return sample
    }

    /// SIGTERM (graceful shutdown), SIGKILL after 10 s; then PostgreSQL stops and the folder goes.
    func stop() {
        stopped.withLock { stopped in
            guard !stopped else { return }
            stopped = true
            if process.isRunning {
                process.terminate()
                if !Subprocess.wait(for: process, timeout: 10) { kill(pid, SIGKILL) }
            }
            try? cluster.stop(immediately: true)
            try? FileManager.default.removeItem(at: directory)
        }
    }

    private func waitUntilListening() async throws {
        let deadline = Monotonic.nanoseconds() + 30_000_000_000
        while Monotonic.nanoseconds() < deadline {
            guard process.isRunning else { throw HarnessFailure("herald exited at start:\n\(log.suffix(2_000))") }
            if Self.accepts(port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessFailure("herald did not listen on port \(port) within 30 s")
    }

    static func accepts(port: Int) -> Bool {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
