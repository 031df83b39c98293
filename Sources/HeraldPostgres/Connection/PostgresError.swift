/// An error from PostgreSQL or from talking to it.
///
/// The server's own words are kept (`sqlState`, `message`, `detail`, `hint`); the description is one line and
/// never contains a password, because connection messages are redacted against the URL they came from.
public struct PostgresError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure this is. A struct over a private enum so that kinds can be added later.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidURL = "invalid database URL"
            case connectionFailed = "cannot connect to PostgreSQL"
            case connectionLost = "connection to PostgreSQL lost"
            case server = "PostgreSQL error"
            case invalidParameter = "invalid query parameter"
            case clientClosed = "PostgreSQL client closed"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The URL (or connection string) could not be parsed.
        public static let invalidURL = Code(.invalidURL)
        /// The server could not be reached or refused the connection (authentication, unknown database, ...).
        public static let connectionFailed = Code(.connectionFailed)
        /// An established connection broke.
        public static let connectionLost = Code(.connectionLost)
        /// The server rejected a statement; `sqlState` says why.
        public static let server = Code(.server)
        /// A parameter cannot be sent (it contains a NUL byte).
        public static let invalidParameter = Code(.invalidParameter)
        /// The ``PostgresClient`` was closed.
        public static let clientClosed = Code(.clientClosed)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// The five-character SQLSTATE (e.g. `23505`) when the server sent one.
    public var sqlState: String?
    /// The primary message (one line).
    public var message: String
    /// The server's DETAIL field, if any.
    public var detail: String?
    /// The server's HINT field, if any.
    public var hint: String?

    /// Creates an error; `message` is reduced to its first non-empty line.
    public init(code: Code, message: String, sqlState: String? = nil, detail: String? = nil, hint: String? = nil) {
        self.code = code
        self.message = Self.firstLine(of: message)
        self.sqlState = sqlState
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let sqlState { text += " (SQLSTATE \(sqlState))" }
        if let detail { text += "; detail: \(Self.firstLine(of: detail))" }
        if let hint { text += "; hint: \(Self.firstLine(of: hint))" }
        return text
    }

    /// libpq messages end with a newline and sometimes carry a second, advisory line; keep the first one.
    static func firstLine(of text: String) -> String {
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingSpaces() }
        return lines.first { !$0.isEmpty } ?? "unknown error"
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
