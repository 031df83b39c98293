import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private PostgreSQL cluster in a directory of its own, run with the system's PostgreSQL binaries:
/// `herald dev` keeps one under `.herald/`, tests start a throwaway one in a temporary directory.
///
/// Layout: `<directory>/data` (the cluster), `<directory>/postgres.log` (server log), and the Unix socket
/// in `<directory>`. The server listens on 127.0.0.1 only, trusts local connections (user `postgres`,
/// no password) and has logical replication enabled (`wal_level=logical`).
public struct LocalPostgresCluster: Sendable {
    /// How the server runs.
    public struct Options: Sendable, Hashable {
        /// `false` turns off `fsync`, `synchronous_commit` and `full_page_writes`: much faster, and a crash
        /// may lose or corrupt data. For tests only.
        public var durable: Bool

        /// Creates options (default: durable).
        public init(durable: Bool = true) {
            self.durable = durable
        }
    }

    /// The cluster's directory.
    public let directory: URL
    /// The TCP port on 127.0.0.1.
    public let port: Int
    /// How the server runs.
    public let options: Options

    private var dataDirectory: URL { directory.appendingPathComponent("data") }
    private var logFile: URL { directory.appendingPathComponent("postgres.log") }

    /// Describes a cluster; nothing happens until ``start()``.
    public init(directory: URL, port: Int, options: Options = Options()) {
        self.directory = directory.standardizedFileURL
        self.port = port
        self.options = options
    }

    /// The URL of `database` on this cluster, as the `postgres` superuser.
    public func databaseURL(database: String = "postgres") -> String {
        "postgres://postgres@127.0.0.1:\(port)/\(database)"
    }

    /// Creates the cluster on first use (initdb), then starts the server unless it already runs, and returns
    /// once it accepts connections.
    /// - Throws: ``LocalClusterError`` with the tool's output or the end of the server log.
    public func start() throws(LocalClusterError) {
        let commands = try LocalClusterCommands.locate()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw LocalClusterError(message: "cannot create \(directory.path): \(error.localizedDescription)")
        }
        try commands.prepareOwnership(of: directory)
        if !FileManager.default.fileExists(atPath: dataDirectory.appendingPathComponent("PG_VERSION").path) {
            var arguments = ["-D", dataDirectory.path, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"]
            if !options.durable { arguments.append("--no-sync") }
            let initdb = try commands.runTool("initdb", arguments)
            guard initdb.status == 0 else {
                throw LocalClusterError(message: "initdb failed in \(dataDirectory.path)", output: initdb.output)
            }
        }
        if try isRunning(commands) {
            if let runningPort = runningPort(), runningPort != port {
                throw LocalClusterError(message: "the cluster in \(directory.path) already runs on port \(runningPort), not \(port): stop it first")
            }
            return
        }
        let started = try commands.runTool(
            "pg_ctl",
            ["start", "-D", dataDirectory.path, "-l", logFile.path, "-w", "-t", "60", "-o", serverOptions()]
        )
        guard started.status == 0 else {
            throw LocalClusterError(message: "PostgreSQL did not start on port \(port)", output: started.output + logTail())
        }
    }

    /// Stops the server if it runs. `immediately` skips the shutdown checkpoint (fine for throwaway clusters).
    public func stop(immediately: Bool = false) throws(LocalClusterError) {
        let commands = try LocalClusterCommands.locate()
        guard try isRunning(commands) else { return }
        let stopped = try commands.runTool("pg_ctl", ["stop", "-D", dataDirectory.path, "-w", "-m", immediately ? "immediate" : "fast"])
        guard stopped.status == 0 else {
            throw LocalClusterError(message: "PostgreSQL did not stop", output: stopped.output)
        }
    }

    /// A TCP port on 127.0.0.1 that nothing listens on right now (the kernel picks it).
    public static func freePort() throws(LocalClusterError) -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw LocalClusterError(message: "cannot open a socket to find a free port") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bind(descriptor, socketAddress, length) == 0 && getsockname(descriptor, socketAddress, &length) == 0
            }
        }
        guard bound else { throw LocalClusterError(message: "cannot bind a socket to find a free port") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    private func isRunning(_ commands: LocalClusterCommands) throws(LocalClusterError) -> Bool {
        try commands.runTool("pg_ctl", ["status", "-D", dataDirectory.path]).status == 0
    }

    /// The port in `postmaster.pid` (its fourth line) of a running server.
    private func runningPort() -> Int? {
        let pidFile = dataDirectory.appendingPathComponent("postmaster.pid")
        guard let contents = try? String(contentsOf: pidFile, encoding: .utf8) else { return nil }
        let lines = contents.split(separator: "\n", omittingEmptySubsequences: false)
        return lines.count > 3 ? Int(lines[3].trimmingCharacters(in: .whitespaces)) : nil
    }

    /// Settings passed on the command line, so that they follow `port` and `options` on every start.
    /// pg_ctl hands this string to a shell, hence the quoting.
    private func serverOptions() -> String {
        // A Unix socket path longer than the kernel allows would stop the server: fall back to TCP only.
        let socketPath = directory.appendingPathComponent(".s.PGSQL.\(port)").path
        let socketDirectory = socketPath.utf8.count < 100 ? directory.path : ""
        var settings = [
            "listen_addresses=127.0.0.1",
            "port=\(port)",
            "unix_socket_directories=\(socketDirectory)",
            "wal_level=logical",
        ]
        if options.durable {
            settings += ["max_replication_slots=10", "max_wal_senders=10"]
        } else {
            // Test clusters also serve many Herald instances at once, each with several connections and maybe a slot.
            settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=500", "max_replication_slots=40", "max_wal_senders=40"]
        }
        return settings.map { "-c " + shellQuoted($0) }.joined(separator: " ")
    }

    private func shellQuoted(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private func logTail() -> String {
        guard let log = try? String(contentsOf: logFile, encoding: .utf8) else { return "" }
        return log.split(separator: "\n").suffix(20).joined(separator: "\n")
    }
}
