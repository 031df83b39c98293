/// When to send standby status updates, and which position they may confirm.
///
/// The confirmed (flushed) position never passes what the consumer acknowledged: the end of the last
/// transaction it has finished with. When the consumer has finished with everything delivered and no
/// transaction is open, it may also move up to the WAL end of the last keepalive: every commit before that
/// point has been sent already, so WAL of other databases or unpublished tables does not pile up behind the slot.
public struct StandbyFeedback: Sendable {
    /// Updates go out at least this often, so that the server sees Herald alive and lag stays visible.
    public var interval: Duration
    /// A moved position is reported at most this often.
    public var minimumInterval: Duration

    private var idleWALEnd = LSN.zero
    private var lastSent: (flushed: LSN, at: ContinuousClock.Instant)?

    /// Creates the policy (defaults: every 10 s, and within 1 s of progress).
    public init(interval: Duration = .seconds(10), minimumInterval: Duration = .seconds(1)) {
        self.interval = interval
        self.minimumInterval = minimumInterval
    }

    /// The position that may be confirmed now.
    /// - Parameters:
    ///   - acknowledged: the consumer's last acknowledged commit end.
    ///   - deliveredThrough: the end of the last commit delivered to it.
    ///   - isInTransaction: a transaction has begun and not committed.
    public func confirmable(acknowledged: LSN, deliveredThrough: LSN, isInTransaction: Bool) -> LSN {
        guard !isInTransaction, acknowledged >= deliveredThrough else { return acknowledged }
        return max(acknowledged, idleWALEnd)
    }

    /// A keepalive arrived; its WAL end only counts between transactions.
    public mutating func keepalive(walEnd: LSN, isInTransaction: Bool) {
        if !isInTransaction { idleWALEnd = max(idleWALEnd, walEnd) }
    }

    /// The connection was replaced: the next update goes out at once.
    public mutating func reset() {
        lastSent = nil
    }

    /// The update to send now, if one is due.
    /// - Parameters:
    ///   - confirmable: ``confirmable(acknowledged:deliveredThrough:isInTransaction:)``.
    ///   - replyRequested: the server asked for an answer (keepalive flag).
    ///   - now: the current time.
    ///   - postgresClock: the current time in microseconds since 2000-01-01 UTC, sent to the server.
    public mutating func update(confirmable: LSN, replyRequested: Bool, now: ContinuousClock.Instant, postgresClock: Int64) -> StandbyStatusUpdate? {
        let due: Bool
        if let lastSent {
            let elapsed = lastSent.at.duration(to: now)
            due = replyRequested || elapsed >= interval || (confirmable != lastSent.flushed && elapsed >= minimumInterval)
        } else {
            due = true
        }
        guard due else { return nil }
        lastSent = (confirmable, now)
        return StandbyStatusUpdate(written: confirmable, flushed: confirmable, applied: confirmable, clock: postgresClock)
    }
}
