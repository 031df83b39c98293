/// Why migrations could not be loaded or applied.
public struct MigrationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure. A struct over a private enum so that kinds can be added later.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidFile = "invalid migration file"
            case changedAfterApplied = "applied migration changed"
            case failed = "migration failed"
            case invalidName = "invalid migration name"
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A file name or folder does not fit the rules (numbering, duplicates, unreadable).
        public static let invalidFile = Code(.invalidFile)
        /// Numbered migrations were edited after being applied; nothing was applied.
        public static let changedAfterApplied = Code(.changedAfterApplied)
        /// A migration's SQL failed; it was rolled back and later ones were not applied.
        public static let failed = Code(.failed)
        /// `newMigration(name:in:)` got a name with no usable character.
        public static let invalidName = Code(.invalidName)

        public var description: String { base.rawValue }
    }

    /// The kind of failure.
    public var code: Code
    /// The migrations concerned (recorded names such as `app/0001_chat.sql`, or file paths).
    public var files: [String]
    /// What happened, in one sentence.
    public var message: String
    /// The database error behind a `.failed` migration.
    public var underlying: PostgresError?

    /// Creates an error.
    public init(code: Code, files: [String], message: String, underlying: PostgresError? = nil) {
        self.code = code
        self.files = files
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        var text = "\(code): \(message)"
        if let underlying { text += ": \(underlying)" }
        return text
    }
}
