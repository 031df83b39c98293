/// The `system` message texts upstream sends when a postgres_changes subscription cannot be created
/// (reference section 2.4), built the way `subscriptions.ex` builds them: the binding is shown as
/// `[event: *, schema: public, table: test, filters: [{"col", "eq", "1", false}], select: nil]`, where
/// `filters` and `select` are Elixir's `inspect(…, pretty: true)` (so a long filter list wraps at 80 columns
/// exactly as upstream's does) and each filter tuple is `{column, op, value, negated}` with the value as
/// stored (an `in` list as `{a,b}`).
public enum SubscriptionErrorMessage {
    /// The table is not published (or does not exist): `Unable to subscribe to changes with given parameters.
    /// Please check Realtime is enabled for the given connect parameters: [event: *, schema: public, table:
    /// doesnotexist, filters: [], select: nil]`.
    public static func notEnabled(
        event: ChangeType?, schema: String, table: String, filters: [FilterCondition], select: [String]? = nil
    ) -> String {
        "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: "
            + "[\(connectParameters(event: event, schema: schema, table: table, filters: filters, select: select))]"
    }

    /// A filter was rejected: `Unable to subscribe to changes with given parameters. An exception happened so
    /// please check your connect parameters: […]. Exception: ERROR P0001 (raise_exception) invalid column for
    /// filter notacolumn`.
    public static func exception(
        event: ChangeType?, schema: String, table: String, filters: [FilterCondition], select: [String]? = nil,
        error: FilterBindingError
    ) -> String {
        "Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: "
            + "[\(connectParameters(event: event, schema: schema, table: table, filters: filters, select: select))]. "
            + "Exception: \(error.exceptionText)"
    }

    static func connectParameters(
        event: ChangeType?, schema: String, table: String, filters: [FilterCondition], select: [String]?
    ) -> String {
        let filterTerms = filters.map { filter in
            ElixirInspect.Term.tuple([.string(filter.column), .string(filter.op.rawValue), .string(filter.value), .bool(filter.negated)])
        }
        let selectText = select.map { ElixirInspect.inspect(.list($0.map { .string($0) }), pretty: true) } ?? "nil"
        return "event: \(event?.rawValue ?? "*"), schema: \(schema), table: \(table), "
            + "filters: \(ElixirInspect.inspect(.list(filterTerms), pretty: true)), select: \(selectText)"
    }
}
