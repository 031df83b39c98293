import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The generator's processes: this executable started again as `herald-bench worker`, pinned to the generator's
/// core, one `WorkerPlan` each. The pool starts every phase on all of them at the same instant and gathers
/// their reports (see `WorkerCommand` for the line protocol).
final class WorkerPool {
    private struct Event {
        var worker: Int
        /// nil: the worker's output ended (it exited).
        var line: String?
    }

    /// The processes and their inputs: what may be stopped from another task (a watchdog).
    struct Handles: Sendable {
        let processes: [Process]
        let inputs: [FileHandle]

        /// Ends the workers (they have finished their plans, or the run is being abandoned).
        func stop() {
            for input in inputs { try? input.close() }
            for process in processes where process.isRunning { process.terminate() }
            for process in processes where !Subprocess.wait(for: process, timeout: 10) { kill(process.processIdentifier, SIGKILL) }
        }
    }

    let handles: Handles
    private var events: AsyncStream<Event>.Iterator
    /// Lines read ahead of the one being collected, by worker.
    private var early: [[String]]

    private init(handles: Handles, events: AsyncStream<Event>) {
        self.handles = handles
        self.events = events.makeAsyncIterator()
        self.early = Array(repeating: [], count: handles.processes.count)
    }

    static func start(plans: [WorkerPlan], cpu: Int?) async throws -> WorkerPool {
        let (events, continuation) = AsyncStream.makeStream(of: Event.self)
        var processes: [Process] = []
        var inputs: [FileHandle] = []
        for plan in plans {
            let process = Subprocess.make(Subprocess.currentExecutable, ["worker"], cpu: cpu)
            let input = Pipe()
            let output = Pipe()
            process.standardInput = input
            process.standardOutput = output
            process.standardError = FileHandle.standardError
            try await Subprocess.launch(process)
            let descriptor = output.fileHandleForReading.fileDescriptor
            let worker = plan.worker
            Thread {
                LineStream.forEachLine(of: descriptor) { continuation.yield(Event(worker: worker, line: $0)) }
                continuation.yield(Event(worker: worker, line: nil))
            }.start()
            LineStream.write(String(decoding: try JSONEncoder().encode(plan), as: UTF8.self), to: input.fileHandleForWriting)
            processes.append(process)
            inputs.append(input.fileHandleForWriting)
        }
        return WorkerPool(handles: Handles(processes: processes, inputs: inputs), events: events)
    }

    /// Waits for the next line of every worker, which must start with `word`, and returns the rest of each, by
    /// worker. A worker's later lines (it may run ahead into its next `ready`) wait for the next call.
    func collect(_ word: String) async throws -> [String] {
        var lines = [String?](repeating: nil, count: handles.processes.count)
        for worker in lines.indices where !early[worker].isEmpty {
            lines[worker] = early[worker].removeFirst()
        }
        while lines.contains(nil) {
            guard let event = await events.next() else { throw HarnessFailure("the workers' output ended") }
            guard let line = event.line else {
                // A worker that already gave its last line may end before the others give theirs.
                if lines[event.worker] != nil { continue }
                throw HarnessFailure("worker \(event.worker) exited early (\(exitDescription(of: event.worker)))")
            }
            if lines[event.worker] == nil {
                lines[event.worker] = line
            } else {
                early[event.worker].append(line)
            }
        }
        return try lines.enumerated().map { worker, line in
            let line = line ?? ""
            guard line.hasPrefix(word) else { throw HarnessFailure("worker \(worker) said '\(line.prefix(200))', expected '\(word)'") }
            return String(line.dropFirst(word.count).drop { $0 == " " })
        }
    }

    private func exitDescription(of worker: Int) -> String {
        let process = handles.processes[worker]
        guard Subprocess.wait(for: process, timeout: 2) else { return "still running" }
        let signalled = process.terminationReason == .uncaughtSignal
        return "\(signalled ? "signal" : "status") \(process.terminationStatus)"
    }

    func skip() {
        for input in handles.inputs { LineStream.write(WorkerProtocol.skip, to: input) }
    }

    func go(at start: UInt64) {
        for input in handles.inputs { LineStream.write(WorkerProtocol.go(at: start), to: input) }
    }
}
