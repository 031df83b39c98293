/// The kind of row change.
public enum ChangeType: String, Sendable, Hashable {
    case insert = "INSERT"
    case update = "UPDATE"
    case delete = "DELETE"
}

/// A table column as events describe it: name and `pg_type.typname`.
public struct Column: Sendable, Hashable {
    public var name: String
    public var type: String

    public init(name: String, type: String) {
        self.name = name
        self.type = type
    }
}

/// One committed row change, as every change source produces it.
public struct Change: Sendable {
    public var schema: String
    public var table: String
    public var type: ChangeType
    /// Microseconds since the Unix epoch (UTC).
    public var commitTimestamp: Int64
    public var columns: [Column]
    /// The new row (INSERT, UPDATE).
    public var record: JSONObject?
    /// The old row's replica identity columns (UPDATE, DELETE).
    public var oldRecord: JSONObject?
    /// Where the change sits in its source's stream (sent to clients, who may resume after it); set by the
    /// replication decoder, or by Herald's change log for the trigger source.
    public var position: ChangePosition?
    /// The writing transaction's id (32 bits, as in the WAL): visibility checks wait until it is visible.
    public var transactionID: UInt32?

    public init(
        schema: String,
        table: String,
        type: ChangeType,
        commitTimestamp: Int64,
        columns: [Column],
        record: JSONObject?,
        oldRecord: JSONObject?,
        position: ChangePosition? = nil,
        transactionID: UInt32? = nil
    ) {
        self.schema = schema
        self.table = table
        self.type = type
        self.commitTimestamp = commitTimestamp
        self.columns = columns
        self.record = record
        self.oldRecord = oldRecord
        self.position = position
        self.transactionID = transactionID
    }
}
