import HeraldCore
import HeraldPostgres
import Logging
import Synchronization

/// Asks the database what groups of subscribers may see of a batch of changes (`realtime.visible_rows`,
/// sql/realtime/authorization.sql), on a connection of its own so that joins and broadcasts never wait behind it.
final class ChangeAuthorizer: Sendable {
    private let database: PostgresClient
    private let logger: Logger
    /// By entity (`"schema"."table"`), as the last answer described them.
    private let knownTables = Mutex<[String: KnownTable]>([:])

    init(databaseURL: String, logger: Logger) {
        self.database = PostgresClient(databaseURL: databaseURL, applicationName: "herald authorization", logger: logger)
        self.logger = logger
    }

    /// Decides a batch in one round trip, grouping subscribers by the claims each table's policies read as last
    /// known; when the policies changed meanwhile (a "stale" answer) it plans again with the new claims. Nil when
    /// the database could not answer.
    func decide(_ requests: [AuthorizationRequest]) async -> AuthorizedBatch? {
        await describeUnknownTables(requests.map(\.change))
        for _ in 1...3 {
            let known = knownTables.withLock { $0 }
            let plan = AuthorizationPlan(requests) { known[$0] }
            guard !plan.checks.isEmpty else { return plan.decided(by: []) }
            guard let answers = await answers(plan.checks) else { return nil }
            learn(from: answers, to: plan.checks)
            if !answers.contains(where: \.stale) { return plan.decided(by: answers) }
        }
        logger.error("authorization check: the tables' policies kept changing while the batch was checked")
        return nil
    }

    /// Learns the key and the policies' claims of tables seen for the first time with a check of no rows, so that
    /// their first batch is already grouped by those claims (unknown, every distinct token would be checked alone).
    private func describeUnknownTables(_ changes: [Change]) async {
        let known = knownTables.withLock { $0 }
        var unknown: [String: VisibilityCheck] = [:]
        for change in changes {
            let check = VisibilityCheck(schema: change.schema, table: change.table, keys: [], groups: [])
            if known[check.entity] == nil { unknown[check.entity] = check }
        }
        guard !unknown.isEmpty else { return }
        let checks = Array(unknown.values)
        // One attempt: if it fails (a table dropped since), the batch's own check retries and decides.
        guard let answers = await answers(checks, attempts: 1) else { return }
        learn(from: answers, to: checks)
    }

    private func learn(from answers: [VisibilityAnswer], to checks: [VisibilityCheck]) {
        knownTables.withLock { tables in
            for (check, answer) in zip(checks, answers) { tables[check.entity] = KnownTable(answer) }
        }
    }

    /// One answer per check, in order; nil when the database could not answer after a few attempts.
    private func answers(_ checks: [VisibilityCheck], attempts: Int = 3) async -> [VisibilityAnswer]? {
        let request = VisibilityCheck.requestJSON(checks)
        for attempt in 1...attempts {
            do {
                let rows = try await database.query("SELECT realtime.visible_rows($1::jsonb)::text", [request])
                guard let text = rows.values.first?.first ?? nil else { throw MalformedAnswer(reason: "no row") }
                let answers = try VisibilityAnswer.parse(text)
                guard answers.count == checks.count else { throw MalformedAnswer(reason: "\(answers.count) answers for \(checks.count) checks") }
                return answers
            } catch {
                logger.warning("authorization check failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                if attempt < attempts { try? await Task.sleep(for: .milliseconds(100 * attempt)) }
            }
        }
        return nil
    }

    func close() { database.close() }

    private struct MalformedAnswer: Error, CustomStringConvertible {
        let reason: String
        var description: String { "malformed visibility answer: \(reason)" }
    }
}
