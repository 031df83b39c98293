/// The reconnect decisions of ``NotificationListener``, as a value with no I/O.
///
/// The listener reports what happened (connected, the attempt failed, the connection was lost, the wait
/// is over, stop was requested) and performs the returned action. An outage is reported once, when it
/// begins; reconnect attempts wait with exponential backoff, and the counter resets once LISTEN succeeds.
public struct ListenerStateMachine: Sendable, Hashable {
    /// Exponential backoff between reconnect attempts: `initial`, doubling up to `maximum`.
    public struct Backoff: Sendable, Hashable {
        /// The wait before the first attempt after a failure.
        public var initial: Duration
        /// The longest wait.
        public var maximum: Duration

        /// Creates a backoff policy (defaults: 100 ms doubling to 5 s).
        public init(initial: Duration = .milliseconds(100), maximum: Duration = .seconds(5)) {
            self.initial = initial
            self.maximum = maximum
        }

        /// The wait after `failures` consecutive failures (1 → `initial`).
        public func delay(afterFailures failures: Int) -> Duration {
            let doublings = min(max(failures - 1, 0), 30)
            let delay = initial * (1 << doublings)
            return min(delay, maximum)
        }
    }

    /// What the listener must do next.
    public enum Action: Sendable, Hashable {
        /// Open a connection and LISTEN on every channel.
        case connect
        /// Deliver `.listening(reconnected:)`, then wait for notifications.
        case startListening(reconnected: Bool)
        /// Deliver `.connectionLost(report)` when `report` is not `nil`, then wait `delay` and report `waitElapsed()`.
        case waitBeforeReconnecting(delay: Duration, report: String?)
        /// Close the connection and end.
        case finish
    }

    private let backoff: Backoff
    private var consecutiveFailures = 0
    private var hasListened = false
    private var outageReported = false
    private var isStopped = false

    /// Creates a state machine that has not started yet.
    public init(backoff: Backoff = Backoff()) {
        self.backoff = backoff
    }

    /// The listener starts.
    public mutating func start() -> Action {
        isStopped ? .finish : .connect
    }

    /// Connecting and LISTEN succeeded.
    public mutating func connected() -> Action {
        guard !isStopped else { return .finish }
        let reconnected = hasListened
        hasListened = true
        consecutiveFailures = 0
        outageReported = false
        return .startListening(reconnected: reconnected)
    }

    /// Connecting or LISTEN failed with `reason`.
    public mutating func connectFailed(_ reason: String) -> Action {
        failure(reason)
    }

    /// An established connection broke with `reason`.
    public mutating func connectionLost(_ reason: String) -> Action {
        failure(reason)
    }

    /// The wait asked for by `.waitBeforeReconnecting` is over.
    public mutating func waitElapsed() -> Action {
        isStopped ? .finish : .connect
    }

    /// Stop was requested; every later event also answers `.finish`.
    public mutating func stop() -> Action {
        isStopped = true
        return .finish
    }

    private mutating func failure(_ reason: String) -> Action {
        guard !isStopped else { return .finish }
        consecutiveFailures += 1
        let report = outageReported ? nil : reason
        outageReported = true
        return .waitBeforeReconnecting(delay: backoff.delay(afterFailures: consecutiveFailures), report: report)
    }
}
