import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Starting the programs the harness needs: pinned to a core with `taskset`, run to completion, or found
/// beside this executable.
enum Subprocess {
    /// A process running `executable arguments`, pinned to `cpu` through `taskset` when given (taskset execs the
    /// program, so the pid is the program's own).
    static func make(_ executable: String, _ arguments: [String], cpu: Int?) -> Process {
        let process = Process()
        if let cpu {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/taskset")
            process.arguments = ["-c", String(cpu), executable] + arguments
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        }
        return process
    }

    /// Starts `process` with no signal blocked. Children inherit the signal mask of the thread that spawns them,
    /// and the threads running Swift tasks here block most signals (SIGINT and SIGTERM among them), so a child
    /// spawned from one could not be stopped gracefully. It is spawned from a thread of its own instead.
    static func launch(_ process: Process) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            Thread {
                var none = sigset_t()
                sigemptyset(&none)
                pthread_sigmask(SIG_SETMASK, &none, nil)
                continuation.resume(with: Result { try process.run() })
            }.start()
        }
    }

    /// Waits for `process` to end, polling (Foundation's `waitUntilExit` spins a run loop on threads that
    /// have none), at most `timeout` seconds; returns whether it ended.
    @discardableResult
    static func wait(for process: Process, timeout: Double = .infinity) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            guard Date() < deadline else { return false }
            usleep(10_000)
        }
        return true
    }

    /// Runs to completion and returns standard output; fails with its output when the exit status is not 0.
    static func run(_ executable: String, _ arguments: [String]) async throws -> String {
        let process = make(executable, arguments, cpu: nil)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try await launch(process)
        let data = output.fileHandleForReading.readDataToEndOfFile()
        wait(for: process)
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw HarnessFailure("\(URL(fileURLWithPath: executable).lastPathComponent) \(arguments.first ?? "") failed: \(text)")
        }
        return text
    }

    /// This executable's path (what `/proc/self/exe` points to).
    static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// `name` in this executable's folder: `.build/release/herald` beside `.build/release/herald-bench`.
    static func sibling(_ name: String) -> String {
        URL(fileURLWithPath: currentExecutable).deletingLastPathComponent().appendingPathComponent(name).path
    }
}

/// A harness failure, reported as one line.
struct HarnessFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Progress on standard error (standard output carries only the JSON summary).
func progress(_ line: String) {
    LineStream.write("herald-bench: " + line, to: .standardError)
}

/// Cleans up on SIGINT/SIGTERM (Ctrl-C, a killed CI job): without it, `defer` blocks never run and the server and
/// its PostgreSQL would outlive the harness.
final class Interruption {
    private let sources: [any DispatchSourceSignal]

    init(_ cleanup: @escaping @Sendable () -> Void) {
        sources = [SIGINT, SIGTERM].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                progress("interrupted: stopping the server and the workers")
                cleanup()
                exit(128 + signalNumber)
            }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}
