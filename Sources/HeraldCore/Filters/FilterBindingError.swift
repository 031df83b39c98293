/// A filter condition that does not fit the table: unknown column, a value the column type cannot read,
/// an operator the type does not support, a bad pattern. Upstream raises these from PostgreSQL when it
/// inserts the subscription row, so they carry the SQLSTATE PostgreSQL would report.
public struct FilterBindingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The SQLSTATE, e.g. `P0001`, `22P02`.
    public var sqlState: String
    /// The condition name Postgrex prints for it, e.g. `raise_exception`, `invalid_text_representation`.
    public var conditionName: String
    /// PostgreSQL's primary message, e.g. `invalid column for filter notacolumn`.
    public var message: String
    /// PostgreSQL's DETAIL line, when it has one (e.g. for a malformed array literal).
    public var detail: String?

    public init(sqlState: String, conditionName: String, message: String, detail: String? = nil) {
        self.sqlState = sqlState
        self.conditionName = conditionName
        self.message = message
        self.detail = detail
    }

    public var description: String { message }

    /// The error as Postgrex renders it, the text upstream appends after `Exception: `:
    /// `ERROR P0001 (raise_exception) invalid column for filter notacolumn`.
    public var exceptionText: String {
        var text = "ERROR \(sqlState) (\(conditionName)) \(message)"
        if let detail { text += "\n\n" + detail }
        return text
    }

    static func raise(_ message: String) -> FilterBindingError {
        FilterBindingError(sqlState: "P0001", conditionName: "raise_exception", message: message)
    }

    static func invalidText(_ message: String, detail: String? = nil) -> FilterBindingError {
        FilterBindingError(sqlState: "22P02", conditionName: "invalid_text_representation", message: message, detail: detail)
    }

    static func invalidSyntax(type: String, input: String) -> FilterBindingError {
        invalidText("invalid input syntax for type \(type): \"\(input)\"")
    }

    static func outOfRange(_ message: String) -> FilterBindingError {
        FilterBindingError(sqlState: "22003", conditionName: "numeric_value_out_of_range", message: message)
    }

    static func invalidDatetime(type: String, input: String) -> FilterBindingError {
        FilterBindingError(
            sqlState: "22007", conditionName: "invalid_datetime_format",
            message: "invalid input syntax for type \(type): \"\(input)\"")
    }

    static func datetimeOverflow(_ message: String) -> FilterBindingError {
        FilterBindingError(sqlState: "22008", conditionName: "datetime_field_overflow", message: message)
    }

    static func invalidParameter(_ message: String) -> FilterBindingError {
        FilterBindingError(sqlState: "22023", conditionName: "invalid_parameter_value", message: message)
    }

    static func undefinedOperator(_ message: String) -> FilterBindingError {
        FilterBindingError(sqlState: "42883", conditionName: "undefined_function", message: message)
    }

    static func notSupported(_ message: String) -> FilterBindingError {
        FilterBindingError(sqlState: "0A000", conditionName: "feature_not_supported", message: message)
    }

    static func invalidEscape(_ message: String) -> FilterBindingError {
        FilterBindingError(sqlState: "22025", conditionName: "invalid_escape_sequence", message: message)
    }
}
