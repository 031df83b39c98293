import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One libpq connection (`PGconn*`). Blocking; not thread-safe: confine it to one thread at a time
/// (``PostgresClient`` and ``NotificationListener`` each own one on a dedicated thread).
///
/// Every value travels in PostgreSQL's text format; parameters are sent separately from the SQL (`$1`, `$2`, ...).
public final class PGConnection {
    let handle: OpaquePointer
    /// Kept only to redact the password out of libpq's messages.
    private let url: String

    /// Connects to `url` (`postgres://user:password@host:port/database?...` or a `key=value` string).
    ///
    /// The attempt polls the socket in 100 ms slices so that `isCancelled` is noticed quickly.
    /// - Parameters:
    ///   - url: the database URL; parameters it sets win over Herald's defaults (keepalives, application name).
    ///   - applicationName: `application_name` unless the URL sets one; shows in `pg_stat_activity`.
    ///   - timeout: how long the whole attempt may take.
    ///   - isCancelled: polled while waiting; returning `true` abandons the attempt.
    /// - Throws: ``PostgresError`` with code `.invalidURL` or `.connectionFailed` and libpq's message on one line.
    public convenience init(
        url: String,
        applicationName: String = "herald",
        timeout: Duration = .seconds(10),
        isCancelled: () -> Bool = { false }
    ) throws(PostgresError) {
        try self.init(url: url, applicationName: applicationName, timeout: timeout, forcedParameters: [], isCancelled: isCancelled)
    }

    /// The designated initializer; `forcedParameters` win over the URL (e.g. `replication=database`).
    init(
        url: String,
        applicationName: String,
        timeout: Duration,
        forcedParameters: [(String, String)],
        isCancelled: () -> Bool
    ) throws(PostgresError) {
        try Self.validate(url: url)
        // Keywords before `dbname` are defaults the URL may override; keywords after it are forced.
        let parameters: [(String, String)] = [
            ("fallback_application_name", applicationName),
            ("keepalives_idle", "30"),
            ("keepalives_interval", "10"),
            ("keepalives_count", "3"),
            ("dbname", url),
            ("client_encoding", "UTF8"),
        ] + forcedParameters
        guard let handle = Self.startConnecting(parameters) else {
            throw PostgresError(code: .connectionFailed, message: "libpq could not allocate a connection")
        }
        self.handle = handle
        self.url = url
        // From here on, a thrown error deinitializes self, which calls PQfinish.
        try finishConnecting(deadline: .now + timeout, isCancelled: isCancelled)
        // Notices ("relation already exists, skipping") would otherwise go to stderr.
        PQsetNoticeProcessor(handle, { _, _ in }, nil)
    }

    deinit {
        PQfinish(handle)
    }

    /// `true` while the connection is usable (it may still break on the next call).
    public var isConnected: Bool { PQstatus(handle) == CONNECTION_OK }

    /// The process id of the server backend serving this connection.
    public var backendPID: Int32 { PQbackendPID(handle) }

    /// `true` when no transaction is open (and no command is running).
    var isIdle: Bool { PQtransactionStatus(handle) == PQTRANS_IDLE }

    /// Runs one statement with `$n` parameters (text format; `nil` is `NULL`) and returns its rows.
    public func execute(_ sql: String, params: [String?] = []) throws(PostgresError) -> PGRows {
        if params.contains(where: { $0?.utf8.contains(0) == true }) {
            throw PostgresError(code: .invalidParameter, message: "a parameter contains a NUL byte")
        }
        let cStrings = params.map { $0.flatMap { strdup($0) } }
        defer { cStrings.forEach { free($0) } }
        let pointers = cStrings.map { $0.map { UnsafePointer($0) } }
        let result = pointers.withUnsafeBufferPointer { values in
            PQexecParams(handle, sql, Int32(params.count), nil, values.baseAddress, nil, nil, 0)
        }
        return try rows(from: result)
    }

    /// Runs a script of several statements separated by semicolons (a migration file), without parameters.
    /// Unless the script manages transactions itself, PostgreSQL runs it as one implicit transaction.
    public func executeScript(_ sql: String) throws(PostgresError) {
        _ = try rows(from: PQexec(handle, sql))
    }

    /// `name` quoted as an SQL identifier (`"my table"`), safe to splice into SQL text.
    public func escapeIdentifier(_ name: String) throws(PostgresError) -> String {
        guard let escaped = PQescapeIdentifier(handle, name, name.utf8.count) else {
            throw connectionError(code: .invalidParameter)
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// An error built from the connection's last message, redacted.
    func connectionError(code: PostgresError.Code) -> PostgresError {
        let message = PQerrorMessage(handle).map { String(cString: $0) } ?? ""
        return PostgresError(code: code, message: DatabaseURL.redact(message, secretsOf: url))
    }

    private func rows(from result: OpaquePointer?) throws(PostgresError) -> PGRows {
        guard let result else {
            throw connectionError(code: isConnected ? .server : .connectionLost)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            return Self.decode(result)
        default:
            throw serverError(result)
        }
    }

    /// The error a failed result carries (or the connection's, when the result has no SQLSTATE).
    func serverError(_ result: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let ascii = code.asciiValue, let value = PQresultErrorField(result, Int32(ascii)) else { return nil }
            return String(cString: value)
        }
        guard let sqlState = field("C") else {
            // No SQLSTATE: libpq itself failed, typically because the connection broke.
            return connectionError(code: isConnected ? .server : .connectionLost)
        }
        let message = field("M") ?? PQresultErrorMessage(result).map { String(cString: $0) } ?? ""
        return PostgresError(
            code: .server,
            message: DatabaseURL.redact(message, secretsOf: url),
            sqlState: sqlState,
            detail: field("D"),
            hint: field("H")
        )
    }

    private static func decode(_ result: OpaquePointer) -> PGRows {
        let columnCount = PQnfields(result)
        let rowCount = PQntuples(result)
        let columns = (0..<columnCount).map { column in PQfname(result, column).map { String(cString: $0) } ?? "" }
        let values = (0..<rowCount).map { row in
            (0..<columnCount).map { column -> String? in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
        let affected = PQcmdTuples(result).flatMap { Int(String(cString: $0)) } ?? 0
        return PGRows(columns: columns, values: values, rowsAffected: affected)
    }
}

@available(*, unavailable, message: "a PGConnection must stay on one thread; use PostgresClient to share one")
extension PGConnection: Sendable {}
