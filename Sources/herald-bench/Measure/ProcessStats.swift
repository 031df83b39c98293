import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CPU time and resident memory of a process, read from `/proc/<pid>/stat` and `/proc/<pid>/status`.
struct ProcessSample: Codable, Equatable {
    /// User + system CPU time, microseconds (whole process, every thread, dead threads included).
    var cpuMicroseconds: UInt64
    /// VmRSS, kilobytes.
    var residentKilobytes: Int
    /// Time its threads spent runnable but waiting for a CPU (run-queue delay from `/proc/<pid>/task/*/schedstat`,
    /// summed over the threads alive now), microseconds: how much the other work on the machine held it back.
    var runQueueWaitMicroseconds: UInt64
    /// Monotonic ns when read.
    var at: UInt64

    static func read(pid: Int32) -> ProcessSample? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let ticks = cpuTicks(statLine: stat),
            let resident = residentKilobytes(status: status)
        else { return nil }
        let ticksPerSecond = UInt64(max(1, sysconf(Int32(_SC_CLK_TCK))))
        let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        let waitNanoseconds = tasks.compactMap { task in
            (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8)).flatMap(runQueueWaitNanoseconds)
        }.reduce(0, +)
        return ProcessSample(
            cpuMicroseconds: ticks * 1_000_000 / ticksPerSecond,
            residentKilobytes: resident,
            runQueueWaitMicroseconds: waitNanoseconds / 1_000,
            at: Monotonic.nanoseconds()
        )
    }

    /// The second field of a `schedstat` line (`<on cpu ns> <waiting ns> <slices>`).
    static func runQueueWaitNanoseconds(schedstat: String) -> UInt64? {
        let fields = schedstat.split(separator: " ")
        return fields.count >= 2 ? UInt64(fields[1]) : nil
    }

    static func readSelf() -> ProcessSample? { read(pid: getpid()) }

    /// utime + stime (fields 14 and 15) in clock ticks. The command name (field 2) may hold spaces and
    /// parentheses, so fields are counted after its closing parenthesis.
    static func cpuTicks(statLine: String) -> UInt64? {
        guard let close = statLine.lastIndex(of: ")") else { return nil }
        let fields = statLine[statLine.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state): utime is field 14, stime field 15.
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return nil }
        return user + system
    }

    /// The `VmRSS:` line, in kB.
    static func residentKilobytes(status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
        }
        return nil
    }
}

/// The kernel's CPU pressure (`/proc/pressure/cpu`, "some" line): the time during which at least one runnable
/// task on the machine waited for a CPU. Its growth over a phase tells how contended the shared cores were.
enum CPUPressure {
    /// The cumulative stall time, microseconds; nil where PSI is not available.
    static func stalledMicroseconds() -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/pressure/cpu", encoding: .utf8) else { return nil }
        return stalledMicroseconds(pressure: text)
    }

    static func stalledMicroseconds(pressure: String) -> UInt64? {
        guard let some = pressure.split(separator: "\n").first(where: { $0.hasPrefix("some ") }),
            let total = some.split(separator: " ").first(where: { $0.hasPrefix("total=") })
        else { return nil }
        return UInt64(total.dropFirst("total=".count))
    }
}

/// What a process used between two samples.
struct ProcessUsage: Codable, Equatable {
    var cpuMicroseconds: UInt64
    var runQueueWaitMicroseconds: UInt64 = 0
    var seconds: Double
    /// Share of one core, percent.
    var cpuPercent: Double { percent(cpuMicroseconds) }
    /// Time spent waiting for a CPU, as a share of the interval, percent.
    var runQueueWaitPercent: Double { percent(runQueueWaitMicroseconds) }

    init(cpuMicroseconds: UInt64, seconds: Double) {
        self.cpuMicroseconds = cpuMicroseconds
        self.seconds = seconds
    }

    init(from before: ProcessSample, to after: ProcessSample) {
        self.init(cpuMicroseconds: after.cpuMicroseconds &- before.cpuMicroseconds, seconds: Double(after.at &- before.at) / 1e9)
        // Threads may have ended in between: never below zero.
        let (after, before) = (after.runQueueWaitMicroseconds, before.runQueueWaitMicroseconds)
        runQueueWaitMicroseconds = after > before ? after - before : 0
    }

    private func percent(_ microseconds: UInt64) -> Double { seconds > 0 ? Double(microseconds) / (seconds * 1e4) : 0 }
}
