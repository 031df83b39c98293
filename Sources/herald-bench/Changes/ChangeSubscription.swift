/// The postgres_changes binding of a socket group (scenarios `s4` and `rls`): every member subscribes to INSERTs
/// of one table, optionally only to the rows of its key (`k=eq.<member % keyGroups>`), optionally with a channel
/// token of its own (each subscriber its own claims).
struct ChangeSubscription: Codable, Equatable {
    var schema = "public"
    var table: String
    /// Member `m` receives the rows whose `k` is `m % keyGroups`; nil: every row.
    var keyGroups: Int?
    /// The channel token of member `m` (`access_token` in the join); nil: the socket's token.
    var tokens: [String]?

    /// The `config.postgres_changes` array of `member`'s join.
    func bindings(of member: Int) -> String {
        let filter = keyGroups.map { #","filter":"k=eq.\#(member % max(1, $0))""# } ?? ""
        return #"[{"event":"INSERT","schema":"\#(schema)","table":"\#(table)"\#(filter)}]"#
    }

    func token(of member: Int) -> String? {
        guard let tokens, !tokens.isEmpty else { return nil }
        return tokens[member % tokens.count]
    }
}
