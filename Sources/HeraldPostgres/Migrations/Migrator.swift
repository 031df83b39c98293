import Foundation

/// Applies Herald's and the application's migrations, each once, each in its own transaction,
/// recording them in `herald.schema_migrations`.
///
/// Sources are applied in the order given; Herald uses: Herald's numbered files, Herald's repeatable files,
/// the application's numbered files, the application's repeatable files. A session advisory lock keeps two
/// migrators from running at the same time.
public struct Migrator: Sendable {
    /// Every file, in application order.
    public let files: [MigrationFile]

    /// The advisory lock key ("HERALD" in ASCII).
    static let lockKey = "79216072428612"

    /// Creates a migrator over `sources`, applied in this order.
    /// - Throws: ``MigrationError`` `.invalidFile` when two sources record the same name.
    public init(sources: [MigrationSource]) throws(MigrationError) {
        let files = sources.flatMap(\.files)
        let names = files.map(\.name)
        if let duplicate = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw MigrationError(code: .invalidFile, files: [duplicate], message: "two sources record the same name")
        }
        self.files = files
    }

    /// Applies what is pending (and changed repeatable files), in order; a second run applies nothing.
    ///
    /// If a numbered migration was edited after it was applied, nothing is applied. If one fails, it is
    /// rolled back, earlier ones stay applied and later ones are not tried.
    /// - Returns: the recorded names applied by this run.
    /// - Throws: ``MigrationError`` (`.changedAfterApplied`, `.failed`) or ``PostgresError`` for the bookkeeping.
    @discardableResult
    public func migrate(on connection: PGConnection) throws -> [String] {
        _ = try connection.execute("SELECT pg_advisory_lock($1::bigint)", params: [Self.lockKey])
        defer { _ = try? connection.execute("SELECT pg_advisory_unlock($1::bigint)", params: [Self.lockKey]) }
        try connection.executeScript(
            """
            CREATE SCHEMA IF NOT EXISTS herald;
            CREATE TABLE IF NOT EXISTS herald.schema_migrations (
                name text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now(),
                kind text NOT NULL CHECK (kind IN ('numbered', 'repeatable'))
            );
            """
        )
        let status = MigrationStatus(files: files, applied: try Self.appliedMigrations(on: connection))
        let changed = status.changedNumbered
        guard changed.isEmpty else {
            throw MigrationError(
                code: .changedAfterApplied,
                files: changed,
                message: "\(changed.joined(separator: ", ")) changed after being applied; nothing was applied "
                    + "(restore the applied content and put the change in a new migration)"
            )
        }
        let toApply = Set(status.toApply)
        var applied: [String] = []
        for file in files where toApply.contains(file.name) {
            try apply(file, on: connection)
            applied.append(file.name)
        }
        return applied
    }

    /// Where each file stands; reads only (an empty database has everything pending).
    public func status(on connection: PGConnection) throws(PostgresError) -> MigrationStatus {
        MigrationStatus(files: files, applied: try Self.appliedMigrations(on: connection))
    }

    private func apply(_ file: MigrationFile, on connection: PGConnection) throws(MigrationError) {
        do {
            _ = try connection.execute("BEGIN")
            try connection.executeScript(file.sql)
            _ = try connection.execute(
                """
                INSERT INTO herald.schema_migrations (name, checksum, kind) VALUES ($1, $2, $3)
                ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()
                """,
                params: [file.name, file.checksum, file.kind.rawValue]
            )
            _ = try connection.execute("COMMIT")
        } catch {
            _ = try? connection.execute("ROLLBACK")
            throw MigrationError(
                code: .failed,
                files: [file.name],
                message: "\(file.name) was rolled back and later migrations were not applied",
                underlying: error
            )
        }
    }

    private static func appliedMigrations(on connection: PGConnection) throws(PostgresError) -> [AppliedMigration] {
        let exists = try connection.execute("SELECT to_regclass('herald.schema_migrations') IS NOT NULL AS present")
        guard exists.first?["present"] == "t" else { return [] }
        return try connection.execute("SELECT name, checksum, applied_at::text AS applied_at FROM herald.schema_migrations")
            .map { row in AppliedMigration(name: row["name"] ?? "", checksum: row["checksum"] ?? "", appliedAt: row["applied_at"] ?? "") }
    }
}
