#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the host, so a sender's timestamp and a
/// receiver's reading in another process can be subtracted. (NIO's `NIODeadline` reads the same clock.)
enum Monotonic {
    static func nanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Sleeps until `deadline` (monotonic ns); returns at once when it has passed.
    static func sleep(until deadline: UInt64) async throws {
        let now = nanoseconds()
        guard deadline > now else { return }
        try await Task.sleep(for: .nanoseconds(Int64(deadline - now)))
    }
}
