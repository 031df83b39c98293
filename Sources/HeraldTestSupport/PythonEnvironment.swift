import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The virtual environment holding the official Python `realtime` client for interoperability tests, created on
/// first use under the package's `.build/` (or taken from `HERALD_TEST_PYTHON`).
public actor PythonEnvironment {
    public static let shared = PythonEnvironment()
    public static let realtimeRequirement = "realtime==2.34.1"

    /// One preparation shared by every caller: the actor is reentrant across the `await`, and two tests creating
    /// the same venv at once break each other's `ensurepip`.
    private var preparation: Task<String, any Error>?

    /// The path of a Python interpreter that can `import realtime`.
    public func interpreter(packageRoot: URL) async throws -> String {
        if let preparation { return try await preparation.value }
        let preparation = Task { try await Self.prepare(packageRoot: packageRoot) }
        self.preparation = preparation
        return try await preparation.value
    }

    private static func prepare(packageRoot: URL) async throws -> String {
        if let given = ProcessInfo.processInfo.environment["HERALD_TEST_PYTHON"] { return given }
        let venv = packageRoot.appendingPathComponent(".build/python-venv")
        let python = venv.appendingPathComponent("bin/python").path
        try await offloaded {
            if (try? run([python, "-c", "import realtime"])) == nil {
                try run(["python3", "-m", "venv", "--clear", venv.path])
                try run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", realtimeRequirement])
            }
        }
        return python
    }

    @discardableResult
    static func run(_ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw PythonError(description: "\(arguments.joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    public struct PythonError: Error, CustomStringConvertible {
        public var description: String
    }
}

/// A child process whose standard output is read line by line (the Python probes print one JSON line per event).
public final class LineProcess: @unchecked Sendable {
    private let process = Process()
    private let lines: AsyncStream<String>

    public init(_ arguments: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        let (lines, continuation) = AsyncStream.makeStream(of: String.self)
        self.lines = lines
        let handle = output.fileHandleForReading
        let thread = Thread {
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: 0x0A) {
                    continuation.yield(String(decoding: pending[pending.startIndex..<newline], as: UTF8.self))
                    pending.removeSubrange(pending.startIndex...newline)
                }
            }
            continuation.finish()
        }
        try process.run()
        thread.start()
    }

    /// All lines, in order, until the process closes its output.
    public var outputLines: AsyncStream<String> { lines }

    public func waitForExit() async throws -> Int32 {
        let process = self.process
        return try await offloaded {
            process.waitUntilExit()
            return process.terminationStatus
        }
    }

    public func terminate() {
        if process.isRunning { process.terminate() }
    }

    /// Ends the process at once (SIGKILL): its sockets close without a goodbye.
    public func kill() {
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
    }

    deinit { terminate() }
}
