import Logging

/// An async, `Sendable` handle on one PostgreSQL connection confined to a dedicated thread.
///
/// Calls are served one at a time in submission order. The connection opens on first use and, after it
/// breaks, reopens on the next call (the failing call reports the error). A statement that has started runs
/// to completion even if the calling task is cancelled.
public final class PostgresClient: Sendable {
    private let thread: ConnectionThread

    /// Creates a client; nothing connects until the first call.
    /// - Parameters:
    ///   - databaseURL: `postgres://user:password@host:port/database`.
    ///   - applicationName: shown in `pg_stat_activity` unless the URL sets `application_name`.
    ///   - logger: receives connection events at debug level.
    public init(databaseURL: String, applicationName: String = "herald", logger: Logger = Logger(label: "herald.postgres")) {
        thread = ConnectionThread(databaseURL: databaseURL, applicationName: applicationName, logger: logger)
    }

    deinit {
        thread.close()
    }

    /// Runs one statement with `$n` parameters (text format; `nil` is `NULL`).
    /// - Throws: ``PostgresError``.
    public func query(_ sql: String, _ params: [String?] = []) async throws -> PGRows {
        try await withConnection { connection in try connection.execute(sql, params: params) }
    }

    /// Runs `body` on the client's thread with its connection, e.g. for a transaction or a migration.
    ///
    /// `body` must not keep the connection. A transaction it leaves open is rolled back afterwards.
    /// - Throws: what `body` throws, or ``PostgresError`` when connecting fails or the client is closed.
    public func withConnection<T: Sendable>(_ body: @escaping @Sendable (PGConnection) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            let accepted = thread.submit { slot in
                continuation.resume(with: Result { try body(slot.open()) })
            }
            if !accepted {
                continuation.resume(throwing: PostgresError(code: .clientClosed, message: "the client was closed"))
            }
        }
    }

    /// Closes the client: calls already submitted still run, later calls throw `.clientClosed`.
    public func close() {
        thread.close()
    }
}
