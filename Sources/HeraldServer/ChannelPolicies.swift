import HeraldCore
import HeraldPostgres
import Logging

/// Asks the row level security policies on realtime.messages what a token may do on a private channel
/// (`realtime.can_access_channel`, sql/realtime/authorization.sql; reference section 4.4). A check that cannot run
/// (database unreachable, a failing policy) is a "no".
struct ChannelPolicies: Sendable {
    let database: PostgresClient
    let logger: Logger

    /// Read permissions for joining: broadcast, and presence when the channel enables it.
    func read(_ channel: ChannelJoin) async -> (broadcast: Bool, presence: Bool) {
        let sql = "SELECT realtime.can_access_channel($1, $2, $3::jsonb, 'broadcast', false)::text, "
            + (channel.config.presenceEnabled ? "realtime.can_access_channel($1, $2, $3::jsonb, 'presence', false)::text" : "'false'")
        guard let row = await ask(sql, channel.subTopic, channel.claims) else { return (false, false) }
        return (row.first == "true", row.count > 1 && row[1] == "true")
    }

    func mayWrite(_ channel: ChannelJoin, _ ext: ChannelAccess.Extension) async -> Bool {
        await mayWrite(subTopic: channel.subTopic, claims: channel.claims, ext)
    }

    /// Also for REST broadcasts, which have a token but no channel.
    func mayWrite(subTopic: String, claims: TokenClaims, _ ext: ChannelAccess.Extension) async -> Bool {
        await ask("SELECT realtime.can_access_channel($1, $2, $3::jsonb, '\(ext.rawValue)', true)::text", subTopic, claims)?.first == "true"
    }

    private func ask(_ sql: String, _ subTopic: String, _ claims: TokenClaims) async -> [String?]? {
        do {
            return try await database.query(sql, [subTopic, claims.role, JSONValue.object(claims.claims).jsonString]).values.first
        } catch {
            logger.error("private channel authorization failed", metadata: ["topic": "\(subTopic)", "error": "\(error)"])
            return nil
        }
    }
}
