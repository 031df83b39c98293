import HeraldCore
import HeraldPostgres
import Logging
import Synchronization

/// Asks the database what groups of subscribers may see of a batch of changes (`realtime.visible_rows`,
/// sql/realtime/authorization.sql), on a connection of its own so that joins and broadcasts never wait behind it.
final class ChangeAuthorizer: Sendable {
    private let database: PostgresClient
    private let logger: Logger
    /// Primary key columns by table, as the last answer gave them: only key values travel to the database.
    private let primaryKeys = Mutex<[String: [String]]>([:])

    init(databaseURL: String, logger: Logger) {
        self.database = PostgresClient(databaseURL: databaseURL, applicationName: "herald authorization", logger: logger)
        self.logger = logger
    }

    func primaryKey(of change: Change) -> [String]? {
        primaryKeys.withLock { $0[Self.tableKey(change)] }
    }

    func learn(_ answer: VisibilityAnswer, for change: Change) {
        primaryKeys.withLock { $0[Self.tableKey(change)] = answer.primaryKey }
    }

    /// One answer per check, in order; nil when the database could not answer after a few attempts.
    func answers(_ checks: [VisibilityCheck]) async -> [VisibilityAnswer]? {
        let request = VisibilityCheck.requestJSON(checks)
        for attempt in 1...3 {
            do {
                let rows = try await database.query("SELECT realtime.visible_rows($1::jsonb)::text", [request])
                guard let text = rows.values.first?.first ?? nil else { throw MalformedAnswer(reason: "no row") }
                let answers = try VisibilityAnswer.parse(text)
                guard answers.count == checks.count else { throw MalformedAnswer(reason: "\(answers.count) answers for \(checks.count) checks") }
                return answers
            } catch {
                logger.warning("authorization check failed", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
        return nil
    }

    func close() { database.close() }

    private struct MalformedAnswer: Error, CustomStringConvertible {
        let reason: String
        var description: String { "malformed visibility answer: \(reason)" }
    }

    private static func tableKey(_ change: Change) -> String { change.schema + "\u{0}" + change.table }
}
