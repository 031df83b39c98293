import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why a local cluster could not be set up, started or stopped.
public struct LocalClusterError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong, in one sentence.
    public var message: String
    /// The end of the tool's output or of the server log, when there is one.
    public var output: String

    /// Creates an error.
    public init(message: String, output: String = "") {
        self.message = message
        self.output = output
    }

    public var description: String {
        output.isEmpty ? message : "\(message)\n\(output)"
    }
}

/// Runs PostgreSQL's tools. `initdb` and `postgres` refuse to run as root, so as root they run as the
/// `postgres` user through `runuser`.
struct LocalClusterCommands: Sendable {
    /// PostgreSQL's server binaries (`initdb`, `pg_ctl`).
    let binDirectory: URL
    let runsAsPostgresUser: Bool

    /// Finds the server binaries: `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
    static func locate() throws(LocalClusterError) -> LocalClusterCommands {
        let runsAsPostgresUser = geteuid() == 0
        var candidates: [URL] = []
        if let pgConfig = executable(named: "pg_config"),
            let result = try? run(pgConfig, ["--bindir"]), result.status == 0
        {
            candidates.append(URL(fileURLWithPath: result.output.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? []
        for version in versions.sorted(by: { (Int($0) ?? 0) > (Int($1) ?? 0) }) {
            candidates.append(URL(fileURLWithPath: "/usr/lib/postgresql/\(version)/bin"))
        }
        guard let binDirectory = candidates.first(where: { isExecutable($0.appendingPathComponent("initdb").path) }) else {
            throw LocalClusterError(
                message: "PostgreSQL server binaries (initdb, pg_ctl) not found: install the PostgreSQL server "
                    + "(e.g. apt-get install postgresql) or put pg_config on PATH"
            )
        }
        return LocalClusterCommands(binDirectory: binDirectory, runsAsPostgresUser: runsAsPostgresUser)
    }

    /// Runs a PostgreSQL tool (as `postgres` when we are root) and returns its exit status and output.
    func runTool(_ tool: String, _ arguments: [String]) throws(LocalClusterError) -> (status: Int32, output: String) {
        let path = binDirectory.appendingPathComponent(tool).path
        guard runsAsPostgresUser else { return try Self.run(path, arguments) }
        guard let runuser = Self.executable(named: "runuser") else {
            throw LocalClusterError(message: "running as root needs runuser to start PostgreSQL as the postgres user")
        }
        return try Self.run(runuser, ["-u", "postgres", "--", path] + arguments)
    }

    /// Hands `directory` to the `postgres` user when tools run as that user, and checks it can write there.
    func prepareOwnership(of directory: URL) throws(LocalClusterError) {
        guard runsAsPostgresUser else { return }
        guard let chown = Self.executable(named: "chown"), let runuser = Self.executable(named: "runuser") else {
            throw LocalClusterError(message: "running as root needs chown and runuser")
        }
        let owned = try Self.run(chown, ["-R", "postgres:", directory.path])
        guard owned.status == 0 else {
            throw LocalClusterError(message: "cannot give \(directory.path) to the postgres user", output: owned.output)
        }
        let writable = try Self.run(runuser, ["-u", "postgres", "--", "test", "-w", directory.path])
        guard writable.status == 0 else {
            throw LocalClusterError(
                message: "the postgres user cannot reach \(directory.path) (a parent folder is private?); "
                    + "use a directory under a world-readable path"
            )
        }
    }

    /// Runs `path` with `arguments` and waits for it; stdout and stderr go together to a scratch file.
    ///
    /// posix_spawn + waitpid rather than Foundation's `Process`, whose exit monitoring was seen to miss the
    /// exit of `runuser` after `pg_ctl start`. A file rather than a pipe, because the server that `pg_ctl`
    /// leaves running must not be able to keep our read end open. Descriptors above 2 are closed in the child,
    /// so the server never inherits our sockets.
    static func run(_ path: String, _ arguments: [String]) throws(LocalClusterError) -> (status: Int32, output: String) {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("herald-\(UUID().uuidString).out").path
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        for descriptor in openDescriptors() where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let spawnError = posix_spawn(&pid, path, &actions, nil, argv, environ)
        guard spawnError == 0 else {
            throw LocalClusterError(message: "cannot run \(path): \(String(cString: strerror(spawnError)))")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 {
            guard errno == EINTR else { throw LocalClusterError(message: "lost track of \(path): \(String(cString: strerror(errno)))") }
        }
        let output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        // WIFEXITED / WEXITSTATUS are macros Swift cannot import; a signal reads as 128 + its number, like a shell.
        let exitStatus = status & 0x7f == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exitStatus, output)
    }

    /// This process's open file descriptors (glibc's closefrom action is not visible to Swift).
    private static func openDescriptors() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
    }

    static func executable(named name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let folders = path.split(separator: ":").map(String.init) + ["/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
        return folders.map { "\($0)/\(name)" }.first(where: isExecutable)
    }

    private static func isExecutable(_ path: String) -> Bool {
        FileManager.default.isExecutableFile(atPath: path)
    }
}
