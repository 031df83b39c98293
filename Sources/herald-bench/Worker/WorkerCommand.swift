import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// A generator process (started by the coordinator, never by hand). Line protocol on stdin/stdout:
/// the first stdin line is the `WorkerPlan` as JSON; then, for each phase, the worker prints `ready`, waits for
/// `go <monotonic ns>`, runs the phase from that instant and prints `report <PhaseReport JSON>` (or reads `skip` and
/// goes on to the next phase).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Internal: one load-generating process, driven by the coordinator over stdin/stdout.",
        shouldDisplay: false
    )

    func run() async throws {
        // A socket the server has closed must fail the write, not kill the process.
        signal(SIGPIPE, SIG_IGN)
        var input = LineStream.lines(of: STDIN_FILENO).makeAsyncIterator()
        guard let planLine = await input.next() else { throw ValidationError("no plan on stdin") }
        let plan = try JSONDecoder().decode(WorkerPlan.self, from: Data(planLine.utf8))
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let worker = try await loop.submit { NIOLoopBound(LoadWorker(plan: plan, loop: loop), eventLoop: loop) }.get()
        let encoder = JSONEncoder()
        for phase in plan.phases {
            LineStream.write("ready")
            guard let line = await input.next() else { throw ValidationError("the coordinator went away") }
            if line == WorkerProtocol.skip { continue }
            guard let start = WorkerProtocol.goTime(line) else { throw ValidationError("expected 'go <ns>', got '\(line)'") }
            let report = try await loop.flatSubmit { worker.value.run(phase, at: start) }.get()
            LineStream.write("report " + String(decoding: try encoder.encode(report), as: UTF8.self))
        }
        try await group.shutdownGracefully()
    }
}

/// The words of the coordinator-worker line protocol.
enum WorkerProtocol {
    /// Instead of `go`: the phase is not run (a rising load that already passed its limit), no report follows.
    static let skip = "skip"

    static func go(at start: UInt64) -> String { "go \(start)" }

    static func goTime(_ line: String) -> UInt64? {
        guard line.hasPrefix("go ") else { return nil }
        return UInt64(line.dropFirst(3))
    }
}

/// Line-oriented pipes: a reading thread per file descriptor (reads block), and unbuffered line writes.
enum LineStream {
    /// The lines read from `descriptor` until end of file.
    static func lines(of descriptor: Int32) -> AsyncStream<String> {
        let (stream, continuation) = AsyncStream.makeStream(of: String.self)
        Thread {
            forEachLine(of: descriptor) { continuation.yield($0) }
            continuation.finish()
        }.start()
        return stream
    }

    /// Calls `body` with each line of `descriptor` (without its newline) until end of file; blocks.
    static func forEachLine(of descriptor: Int32, _ body: (String) -> Void) {
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            pending.append(contentsOf: chunk[0..<count])
            var start = 0
            while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                body(String(decoding: pending[start..<newline], as: UTF8.self))
                start = newline + 1
            }
            pending.removeFirst(start)
        }
        if !pending.isEmpty { body(String(decoding: pending, as: UTF8.self)) }
    }

    static func write(_ line: String, to handle: FileHandle = .standardOutput) {
        handle.write(Data((line + "\n").utf8))
    }
}
