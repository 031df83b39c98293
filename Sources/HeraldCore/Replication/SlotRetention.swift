import NIOCore

/// How far a replication slot may be confirmed while recent changes are kept for resuming clients
/// (``ChangeRetention``): past a transaction only once none of its changes is kept any more. The slot then still
/// holds every kept change, so a restarted Herald reads them again and resuming clients miss nothing.
public struct SlotRetention: Sendable {
    private var commits = CircularBuffer<TransactionCommit>()

    public init() {}

    /// Transactions committed and not yet confirmable.
    public var pending: Int { commits.count }

    /// A transaction has been handled (its changes dispatched and kept).
    public mutating func committed(_ commit: TransactionCommit) {
        commits.append(commit)
    }

    /// The end of the newest transaction none of whose changes is kept, when it is new since the last call.
    /// - Parameter oldestKept: the oldest kept change's position (`nil` when none is kept).
    public mutating func confirmable(oldestKept: ChangePosition?) -> LSN? {
        var confirmable: LSN?
        while let first = commits.first, oldestKept.map({ first.commitLSN.value < $0.major }) ?? true {
            confirmable = first.endLSN
            commits.removeFirst()
        }
        return confirmable
    }
}
