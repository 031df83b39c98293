import HeraldCore
import NIOCore
import Synchronization

/// The recent changes Herald keeps so that a client rejoining with `postgres_changes_resume` gets exactly what it
/// missed (a ``ChangeRetention``), and the seam between replaying them and live delivery.
///
/// One lock orders the two: a change is recorded and dispatched while holding it, and a resuming channel is
/// subscribed, sent its join reply and its missed changes while holding it. So every change is either in the
/// replay (recorded before the seam) or live (dispatched after it), never both, never neither, and the replay
/// reaches the socket first (both are queued to the socket's event loop in lock order).
///
/// With the replication source it also decides how far the slot may be confirmed (``SlotRetention``): only past
/// changes no longer kept, so that a restarted Herald reads them again from the slot.
final class ChangeLog: Sendable {
    private struct State {
        var retention: ChangeRetention
        var slot = SlotRetention()
    }

    let window: RetentionWindow
    private let state: Mutex<State>

    /// A log for the trigger source, numbering changes in a stream of its own (a random epoch per process).
    init(window: RetentionWindow = RetentionWindow()) {
        self.window = window
        self.state = Mutex(State(retention: ChangeRetention(epoch: UInt64.random(in: 1...UInt64.max), window: window)))
    }

    /// Switches to the WAL stream (replication source): kept changes will be those committed at or after `lsn`,
    /// where the slot resumes. Called before Herald serves.
    func followWAL(from lsn: LSN) {
        state.withLock { $0 = State(retention: ChangeRetention(walFrom: lsn, window: window)) }
    }

    /// Records `change` and hands it, with its position, to `sink`, while no resume can interleave. A repeat of
    /// a change already recorded is dropped.
    func publish(_ change: Change, to sink: any ChangeSink, now: Int64 = WallClock.microseconds()) {
        state.withLock { state in
            guard let recorded = state.retention.append(change, now: now) else { return }
            sink.dispatch(recorded)
        }
    }

    /// Runs `body` with the kept changes while no change is recorded or dispatched (the resume seam).
    func pausingDispatch(now: Int64 = WallClock.microseconds(), _ body: (ChangeRetention) -> Void) {
        state.withLock { state in
            state.retention.expire(now: now)
            body(state.retention)
        }
    }

    /// Changes were lost upstream (NOTIFY outage, replication slot created again): no position seen so far can
    /// be resumed from.
    func forgetAll() {
        state.withLock { $0.retention.forgetAll() }
    }

    /// A replicated transaction has been dispatched and its changes kept.
    func committed(_ commit: TransactionCommit) {
        state.withLock { $0.slot.committed(commit) }
    }

    /// Evicts what left the window; returns how far the slot may now be confirmed, when that moved.
    func confirmable(now: Int64 = WallClock.microseconds()) -> LSN? {
        state.withLock { state in
            state.retention.expire(now: now)
            return state.slot.confirmable(oldestKept: state.retention.oldest)
        }
    }

    /// Number and approximate size of the kept changes, for logs.
    var usage: (changes: Int, bytes: Int) {
        state.withLock { ($0.retention.count, $0.retention.bytes) }
    }
}
