#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Waiting on a libpq socket with poll(2), in short slices so callers can notice a stop request.
enum SocketWait {
    /// Waits until `socket` is readable (or writable) or `timeout` passes.
    /// Returns `true` when the socket is ready or in an error/hang-up state (the next libpq call reports it).
    static func wait(socket: Int32, forWriting: Bool = false, timeout: Duration) -> Bool {
        guard socket >= 0 else { return true }
        let events = Int16(forWriting ? POLLOUT : POLLIN)
        var descriptor = pollfd(fd: socket, events: events, revents: 0)
        let milliseconds = Int32(clamping: timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        while true {
            let ready = poll(&descriptor, 1, max(milliseconds, 0))
            if ready >= 0 { return ready > 0 }
            if errno != EINTR { return true }
        }
    }
}
