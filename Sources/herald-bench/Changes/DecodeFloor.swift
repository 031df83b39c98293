import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The decode floor: `pg_recvlogical` streaming a test_decoding slot to a pipe, pinned to the server's core. A
/// thread here reads its lines, counts the benchmark table's INSERTs and times each from the writer's clock in
/// `bt` to the line's arrival: what logical decoding alone delivers, with no fan-out.
final class DecodeFloor: Sendable {
    struct Counts {
        var rows = 0
        var latency = LatencyHistogram()
        var lastRowAt: UInt64?
    }

    static let slot = "herald_bench_floor"
    let pid: Int32
    private let process: Process
    private let counts = Mutex(Counts())

    private init(process: Process) {
        self.process = process
        self.pid = process.processIdentifier
    }

    static func start(database: ChangeDatabase, cpu: Int?) async throws -> DecodeFloor {
        let tool = "/usr/bin/pg_recvlogical"
        _ = try await Subprocess.run(tool, ["-d", database.url, "--slot", slot, "--create-slot", "-P", "test_decoding"])
        let process = Subprocess.make(tool, ["-d", database.url, "--slot", slot, "--start", "-o", "skip-empty-xacts=1", "-f", "-", "-F", "1"], cpu: cpu)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.standardError
        try await Subprocess.launch(process)
        let floor = DecodeFloor(process: process)
        let descriptor = output.fileHandleForReading.fileDescriptor
        let marker = "table public.\(ChangeDatabase.table): INSERT:"
        Thread {
            LineStream.forEachLine(of: descriptor) { line in
                guard line.hasPrefix(marker) else { return }
                let now = Monotonic.nanoseconds()
                let sentAt = Self.sentAt(in: line)
                floor.counts.withLock { counts in
                    counts.rows += 1
                    counts.lastRowAt = now
                    if let sentAt { counts.latency.record(from: sentAt, to: now) }
                }
            }
        }.start()
        return floor
    }

    /// The value of `bt[bigint]:<n>` in a test_decoding line.
    static func sentAt(in line: String) -> UInt64? {
        guard let range = line.range(of: "bt[bigint]:") else { return nil }
        return UInt64(line[range.upperBound...].prefix { $0.isNumber })
    }

    /// What was counted since the last call.
    func take() -> Counts {
        counts.withLock { counts in
            defer { counts = Counts() }
            return counts
        }
    }

    /// Returns once no row arrived for `seconds` (at most 30 s from now).
    func waitUntilQuiet(seconds: Double, since start: UInt64) async throws {
        let deadline = Monotonic.nanoseconds() + 30_000_000_000
        while true {
            let now = Monotonic.nanoseconds()
            let last = max(start, counts.withLock { $0.lastRowAt ?? 0 })
            if now >= deadline || now >= last + UInt64(seconds * 1e9) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func sample() -> ProcessSample? { ProcessSample.read(pid: pid) }

    /// Stops streaming and drops the slot (it would hold WAL back for the passes after it).
    func stop(database: ChangeDatabase) async {
        if process.isRunning {
            process.interrupt()
            if !Subprocess.wait(for: process, timeout: 10) { kill(pid, SIGKILL) }
        }
        try? await database.execute("SELECT pg_drop_replication_slot('\(Self.slot)')")
    }
}
