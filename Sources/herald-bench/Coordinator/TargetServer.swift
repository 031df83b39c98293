import Foundation
import HeraldPostgres
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The server a run measures, whichever it is: its port, the process whose CPU and memory are read, its log.
protocol TargetServer: AnyObject, Sendable {
    var port: Int { get }
    /// What Herald's sockets send as `apikey` (empty for the peers).
    var token: String { get }
    /// The process doing the serving (nginx: its one worker, not the master).
    var pid: Int32 { get }
    var log: String { get }
    func stop()
}

extension TargetServer {
    func sample() throws -> ProcessSample {
        guard let sample = ProcessSample.read(pid: pid) else { throw HarnessFailure("the server (pid \(pid)) is gone:\n\(log.suffix(2_000))") }
        return sample
    }
}

extension Target {
    /// Starts this target's server pinned to `settings.serverCPU`.
    func start(_ settings: BenchRun.Settings) async throws -> any TargetServer {
        switch self {
        case .herald: return try await ServerUnderTest.start(herald: settings.herald, cpu: settings.serverCPU)
        case .nchan: return try await NchanServer.start(template: settings.nchanTemplate, cpu: settings.serverCPU)
        case .floor: return try await FloorServer.start(cpu: settings.serverCPU)
        }
    }
}

/// A server program run as a child process, its output in a log file in `directory`; `stop()` sends SIGTERM, then
/// SIGKILL after 10 s, and removes the folder when the server owns it (its own temporary folder, not one it shares).
final class ChildServer: Sendable {
    let process: Process
    let port: Int
    let directory: URL
    private let logFile: URL
    private let ownsDirectory: Bool
    private let stopped = Mutex(false)

    private init(process: Process, port: Int, directory: URL, logFile: URL, ownsDirectory: Bool) {
        self.process = process
        self.port = port
        self.directory = directory
        self.logFile = logFile
        self.ownsDirectory = ownsDirectory
    }

    /// A fresh temporary folder for a server's files.
    static func makeDirectory(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-bench-\(name)-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// Starts `executable arguments` pinned to `cpu`, logging into `directory/logName`, and returns once it accepts
    /// connections on `port`.
    static func start(
        _ executable: String, _ arguments: [String], cpu: Int?, port: Int, directory: URL, logName: String = "server.log", ownsDirectory: Bool = true
    ) async throws -> ChildServer {
        let process = Subprocess.make(executable, arguments, cpu: cpu)
        let log = directory.appendingPathComponent(logName)
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let logHandle = try FileHandle(forWritingTo: log)
        process.standardOutput = logHandle
        process.standardError = logHandle
        try await Subprocess.launch(process)
        let server = ChildServer(process: process, port: port, directory: directory, logFile: log, ownsDirectory: ownsDirectory)
        do {
            try await Listening.wait(for: port, while: { process.isRunning }, log: { server.log })
        } catch {
            server.stop()
            throw error
        }
        return server
    }

    var log: String { (try? String(contentsOf: logFile, encoding: .utf8)) ?? "" }

    func stop() {
        stopped.withLock { stopped in
            guard !stopped else { return }
            stopped = true
            if process.isRunning {
                process.terminate()
                if !Subprocess.wait(for: process, timeout: 10) { kill(process.processIdentifier, SIGKILL) }
            }
            if ownsDirectory { try? FileManager.default.removeItem(at: directory) }
        }
    }
}

/// Waiting for a server to listen.
enum Listening {
    /// Returns once something accepts TCP connections on 127.0.0.1:`port`; fails when `running` turns false or after 30 s.
    static func wait(for port: Int, while running: () -> Bool, log: () -> String) async throws {
        let deadline = Monotonic.nanoseconds() + 30_000_000_000
        while Monotonic.nanoseconds() < deadline {
            guard running() else { throw HarnessFailure("the server exited at start:\n\(log().suffix(2_000))") }
            if accepts(port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw HarnessFailure("the server did not listen on port \(port) within 30 s")
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

/// The floor peer: this executable started again as `herald-bench floor-server`, pinned to the server's core.
final class FloorServer: TargetServer {
    private let child: ChildServer

    private init(child: ChildServer) { self.child = child }

    static func start(cpu: Int?) async throws -> FloorServer {
        let port = try LocalPostgresCluster.freePort()
        let directory = try ChildServer.makeDirectory("floor")
        let child = try await ChildServer.start(Subprocess.currentExecutable, ["floor-server", "--port", String(port)], cpu: cpu, port: port, directory: directory)
        return FloorServer(child: child)
    }

    var port: Int { child.port }
    var token: String { "" }
    var pid: Int32 { child.process.processIdentifier }
    var log: String { child.log }
    func stop() { child.stop() }
}

/// The nchan peer: nginx with one worker process and the nchan module, its configuration rendered from
/// `Benchmarks/nchan/nginx.conf.template` into a temporary folder.
final class NchanServer: TargetServer {
    static let nginx = "/usr/sbin/nginx"
    static let module = "/usr/lib/nginx/modules/ngx_nchan_module.so"
    static let templateInRepository = "Benchmarks/nchan/nginx.conf.template"

    private let child: ChildServer
    let pid: Int32

    private init(child: ChildServer, worker: Int32) {
        self.child = child
        self.pid = worker
    }

    /// Why nchan cannot run here, or nil when it can.
    static func unavailableReason() -> String? {
        guard FileManager.default.isExecutableFile(atPath: nginx), FileManager.default.fileExists(atPath: module) else {
            return "nginx with nchan is not installed (apt-get install -y nginx libnginx-mod-nchan)"
        }
        return nil
    }

    /// The template: `path` when given, else `Benchmarks/nchan/nginx.conf.template` in the first folder above this
    /// executable (or the working folder) that has one.
    static func findTemplate(_ path: String?) throws -> String {
        if let path { return path }
        var folders = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath)]
        var folder = URL(fileURLWithPath: Subprocess.currentExecutable).deletingLastPathComponent()
        while folder.path != "/" {
            folders.append(folder)
            folder.deleteLastPathComponent()
        }
        for folder in folders {
            let candidate = folder.appendingPathComponent(templateInRepository).path
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        throw HarnessFailure("no \(templateInRepository) above \(Subprocess.currentExecutable) or here: pass --nchan-config")
    }

    /// The template with its fields filled in.
    static func render(_ template: String, port: Int, prefix: String) -> String {
        template.replacingOccurrences(of: "@PORT@", with: String(port)).replacingOccurrences(of: "@PREFIX@", with: prefix)
    }

    static func start(template: String?, cpu: Int?) async throws -> NchanServer {
        if let reason = unavailableReason() { throw HarnessFailure(reason) }
        let text = try String(contentsOfFile: try findTemplate(template), encoding: .utf8)
        let port = try LocalPostgresCluster.freePort()
        let directory = try ChildServer.makeDirectory("nchan")
        let configuration = directory.appendingPathComponent("nginx.conf")
        try render(text, port: port, prefix: directory.path).write(to: configuration, atomically: true, encoding: .utf8)
        // taskset pins the master; the worker it forks inherits the core.
        let child = try await ChildServer.start(nginx, ["-p", directory.path, "-c", configuration.path], cpu: cpu, port: port, directory: directory)
        // The master listens before it forks its worker.
        let master = child.process.processIdentifier
        let deadline = Monotonic.nanoseconds() + 10_000_000_000
        while Monotonic.nanoseconds() < deadline {
            if let worker = workerProcess(of: master) { return NchanServer(child: child, worker: worker) }
            try await Task.sleep(for: .milliseconds(20))
        }
        child.stop()
        throw HarnessFailure("nginx (pid \(master)) started no worker process within 10 s:\n\(child.log.suffix(2_000))")
    }

    private static func workerProcess(of master: Int32) -> Int32? {
        let children = try? String(contentsOfFile: "/proc/\(master)/task/\(master)/children", encoding: .utf8)
        return children?.split(separator: " ").first.flatMap { Int32($0) }
    }

    var port: Int { child.port }
    var token: String { "" }
    var log: String { child.log + ((try? String(contentsOf: child.directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? "") }
    func stop() { child.stop() }
}
