/// A `postgres_changes` filter operator (reference section 3.2).
public enum FilterOperator: String, Sendable, Hashable, CaseIterable {
    case eq, neq, lt, lte, gt, gte
    case `in`
    case like, ilike
    case `is`
    case match, imatch
    case isdistinct
}

/// One `column=[not.]op.value` condition of a filter, as the syntax phase produced it (not yet checked
/// against the table).
public struct FilterCondition: Sendable, Hashable {
    /// The column name exactly as written (upstream does not trim it).
    public var column: String
    public var op: FilterOperator
    /// The value as upstream stores it: PostgREST quotes removed for every operator except `in`; for `in`
    /// the parenthesised list rewritten as a PostgreSQL array literal, `(a,"b,c")` ⇒ `{a,"b,c"}`.
    public var value: String
    /// The `not.` prefix.
    public var negated: Bool

    public init(column: String, op: FilterOperator, value: String, negated: Bool = false) {
        self.column = column
        self.op = op
        self.value = value
        self.negated = negated
    }
}
