/// The result of one statement, in PostgreSQL's text format: column names, rows of optional strings
/// (`nil` is SQL `NULL`) and the number of rows the command affected.
public struct PGRows: Sendable, Hashable, RandomAccessCollection {
    /// Column names in result order.
    public let columns: [String]
    /// Row values in column order; `nil` is SQL `NULL`.
    public let values: [[String?]]
    /// Rows inserted, updated, deleted, selected, ... as reported by the command tag; 0 when it reports none.
    public let rowsAffected: Int

    /// Creates a result.
    public init(columns: [String], values: [[String?]], rowsAffected: Int) {
        self.columns = columns
        self.values = values
        self.rowsAffected = rowsAffected
    }

    public var startIndex: Int { values.startIndex }
    public var endIndex: Int { values.endIndex }
    public subscript(position: Int) -> PGRow { PGRow(columns: columns, values: values[position]) }
}

/// One row of a ``PGRows``.
public struct PGRow: Sendable, Hashable {
    /// Column names in result order (shared with the result).
    public let columns: [String]
    /// Values in column order; `nil` is SQL `NULL`.
    public let values: [String?]

    /// The value of the first column with this name; `nil` when it is `NULL` or there is no such column.
    public subscript(column: String) -> String? {
        guard let index = columns.firstIndex(of: column) else { return nil }
        return values[index]
    }

    /// The value at a column position; `nil` when it is `NULL` or out of range.
    public subscript(index: Int) -> String? {
        values.indices.contains(index) ? values[index] : nil
    }
}
