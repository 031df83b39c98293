/// At most `maxCalls` per fixed window that opens at the first call. It limits a channel's presence pushes, as
/// Realtime does (`CLIENT_PRESENCE_MAX_CALLS`, default 5, per `CLIENT_PRESENCE_WINDOW_MS`, default 30 000), a
/// channel's events per second, and the server's joins per second.
///
/// A value with no clock of its own: the caller passes the time.
public struct WindowRateLimiter: Sendable {
    /// The `system` message sent when a channel's presence pushes go over the limit.
    public static let presenceExceededMessage = "Client presence rate limit exceeded"
    /// The `system` message sent when a channel's events go over the limit (upstream's events per second).
    public static let eventsExceededMessage = "Too many messages per second"
    /// The join refusal when the server's joins per second go over the limit.
    public static let joinsExceededReason = "ClientJoinRateLimitReached: Too many joins per second"

    public let maxCalls: Int
    public let window: Duration
    private var windowEnd: ContinuousClock.Instant?
    private var calls = 0

    public init(maxCalls: Int = 5, window: Duration = .seconds(30)) {
        self.maxCalls = maxCalls
        self.window = window
    }

    /// Counts one call made at `now`; `false` means it is over the limit.
    /// A refused call does not count and does not extend the window.
    public mutating func allowCall(at now: ContinuousClock.Instant) -> Bool {
        if let windowEnd, now <= windowEnd {
            guard calls < maxCalls else { return false }
            calls += 1
            return true
        }
        windowEnd = now + window
        calls = 1
        return true
    }
}
