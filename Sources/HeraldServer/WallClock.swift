import Foundation

/// The system's real-time clock, in the units the protocol uses.
enum WallClock {
    static func microseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000 + Int64(now.tv_nsec) / 1000
    }

    static func milliseconds() -> Int64 { microseconds() / 1000 }

    static func seconds() -> Int64 { microseconds() / 1_000_000 }
}
