/// Limits the `presence` pushes of one channel (socket + topic): at most `maxCalls` per fixed window
/// that opens at the first call, as Realtime does (`CLIENT_PRESENCE_MAX_CALLS`, default 5, per
/// `CLIENT_PRESENCE_WINDOW_MS`, default 30 000). Every presence push counts, valid or not. Going over
/// the limit is fatal for the channel: `system` error ``exceededMessage`` then close.
///
/// A value with no clock of its own: the caller passes the time.
public struct PresenceRateLimiter: Sendable {
    /// The `system` message sent when the limit is exceeded.
    public static let exceededMessage = "Client presence rate limit exceeded"

    public let maxCalls: Int
    public let window: Duration
    private var windowEnd: ContinuousClock.Instant?
    private var calls = 0

    public init(maxCalls: Int = 5, window: Duration = .seconds(30)) {
        self.maxCalls = maxCalls
        self.window = window
    }

    /// Counts one presence push made at `now`; `false` means it is over the limit.
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
