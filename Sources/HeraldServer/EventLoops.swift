import Foundation
import NIOCore
import NIOPosix

/// Sizes the server's event loops to the cores the process may actually use: NIO's shared group counts the
/// machine's cores, so under `taskset -c 0` it would run two loop threads on one core and pay a context switch for
/// every hand-off between them.
enum EventLoops {
    /// The cores in this process's CPU affinity mask (at least 1).
    static var usableCores: Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let count = affinityCount(procStatus: status)
        else { return System.coreCount }
        return count
    }

    /// Counts the bits of the `Cpus_allowed:` hex mask (`ff,ffffffff`) of a `/proc/<pid>/status` text
    /// (`sched_getaffinity` is not visible to Swift without `_GNU_SOURCE`).
    static func affinityCount(procStatus: String) -> Int? {
        guard let line = procStatus.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") }) else { return nil }
        var count = 0
        for character in line.dropFirst("Cpus_allowed:".count) where character != "," && !character.isWhitespace {
            guard let nibble = character.hexDigitValue else { return nil }
            count += nibble.nonzeroBitCount
        }
        return count > 0 ? count : nil
    }

    /// A group of its own when the affinity mask is narrower than the machine, else NIO's shared one (which tests
    /// running many servers in one process then share).
    static func makeGroup() -> MultiThreadedEventLoopGroup? {
        let cores = usableCores
        return cores < System.coreCount ? MultiThreadedEventLoopGroup(numberOfThreads: cores) : nil
    }
}
