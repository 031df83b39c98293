/// What a replication change source delivers, in commit order.
///
/// Transactions are streamed, never collected: `.begin`, one `.change` per row change (`.truncate` per statement),
/// `.commit`. So a 100,000-row transaction costs memory for one change at a time. A consumer that has
/// finished with a transaction acknowledges its ``TransactionCommit/endLSN``; only then may the slot move past it.
public enum ReplicationEvent: Sendable, Equatable {
    /// The stream is running. `reconnected` is `true` after an outage (nothing was lost: the slot kept the
    /// changes). `slotRecreated` is `true` when the slot this stream used has disappeared and was created
    /// again: changes committed between the old slot's last confirmed position and now are lost.
    case streaming(reconnected: Bool, slotRecreated: Bool)
    /// A transaction starts.
    case begin(TransactionBegin)
    /// A row change of the current transaction, stamped with the transaction's commit time.
    case change(Change)
    /// The current transaction truncated these tables (one TRUNCATE statement).
    case truncate([TableName])
    /// The current transaction's end.
    case commit(TransactionCommit)
    /// The connection broke or could not be opened; the source keeps reconnecting with backoff. Sent once
    /// per outage. A transaction cut in the middle continues after the reconnection without repeating the
    /// changes already delivered.
    case connectionLost(String)
}

/// A table, as `schema.table`.
public struct TableName: Sendable, Hashable, CustomStringConvertible {
    public var schema: String
    public var table: String

    public init(schema: String, table: String) {
        self.schema = schema
        self.table = table
    }

    public var description: String { "\(schema).\(table)" }
}

/// The start of a transaction.
public struct TransactionBegin: Sendable, Equatable {
    public var transactionID: UInt32
    /// The LSN of its commit record.
    public var commitLSN: LSN
    /// Microseconds since the Unix epoch.
    public var commitTimestamp: Int64

    public init(transactionID: UInt32, commitLSN: LSN, commitTimestamp: Int64) {
        self.transactionID = transactionID
        self.commitLSN = commitLSN
        self.commitTimestamp = commitTimestamp
    }
}

/// The end of a transaction.
public struct TransactionCommit: Sendable, Equatable {
    /// The LSN of its commit record.
    public var commitLSN: LSN
    /// The end of its commit record: acknowledge this once the transaction is handled.
    public var endLSN: LSN
    /// Microseconds since the Unix epoch.
    public var commitTimestamp: Int64

    public init(commitLSN: LSN, endLSN: LSN, commitTimestamp: Int64) {
        self.commitLSN = commitLSN
        self.endLSN = endLSN
        self.commitTimestamp = commitTimestamp
    }
}

extension Change: Equatable {
    /// Equal content; positions are left out, since each source numbers its changes its own way.
    public static func == (lhs: Change, rhs: Change) -> Bool {
        lhs.schema == rhs.schema && lhs.table == rhs.table && lhs.type == rhs.type
            && lhs.commitTimestamp == rhs.commitTimestamp && lhs.columns == rhs.columns
            && lhs.record == rhs.record && lhs.oldRecord == rhs.oldRecord
    }
}
