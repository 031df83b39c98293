/// A row of `herald.schema_migrations`.
public struct AppliedMigration: Sendable, Hashable {
    /// The recorded name (`herald/0001_realtime.sql`).
    public var name: String
    /// The checksum of the SQL that was applied.
    public var checksum: String
    /// When it was (last) applied, as PostgreSQL prints a `timestamptz`.
    public var appliedAt: String

    /// Creates a record.
    public init(name: String, checksum: String, appliedAt: String) {
        self.name = name
        self.checksum = checksum
        self.appliedAt = appliedAt
    }
}

/// Where each migration file stands against the database; also the migrator's plan.
public struct MigrationStatus: Sendable, Hashable, CustomStringConvertible {
    /// The state of one file.
    public enum State: String, Sendable, Hashable {
        /// Applied with the current content.
        case applied
        /// Never applied.
        case pending
        /// Applied with other content. Numbered: `migrate` refuses to run. Repeatable: `migrate` re-applies it.
        case changed
    }

    /// One file and its state.
    public struct Entry: Sendable, Hashable {
        /// The recorded name.
        public var name: String
        /// Numbered or repeatable.
        public var kind: MigrationKind
        /// Applied, pending or changed.
        public var state: State
        /// When it was last applied, if ever.
        public var appliedAt: String?
    }

    /// One entry per file, in application order.
    public var entries: [Entry]

    /// Compares `files` (in application order) with the database's records.
    public init(files: [MigrationFile], applied: [AppliedMigration]) {
        let records = Dictionary(applied.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        entries = files.map { file in
            guard let record = records[file.name] else {
                return Entry(name: file.name, kind: file.kind, state: .pending, appliedAt: nil)
            }
            let state: State = record.checksum == file.checksum ? .applied : .changed
            return Entry(name: file.name, kind: file.kind, state: state, appliedAt: record.appliedAt)
        }
    }

    /// Numbered migrations edited after they were applied; any of them blocks `migrate`.
    public var changedNumbered: [String] {
        entries.filter { $0.kind == .numbered && $0.state == .changed }.map(\.name)
    }

    /// What `migrate` applies, in order: pending files and changed repeatable files.
    public var toApply: [String] {
        entries.filter { $0.state == .pending || ($0.kind == .repeatable && $0.state == .changed) }.map(\.name)
    }

    /// `true` when `migrate` has nothing to do.
    public var isUpToDate: Bool { toApply.isEmpty && changedNumbered.isEmpty }

    /// One line per file: state, name, and what `migrate` will do about it.
    public var description: String {
        entries.map { entry in
            let state = entry.state.rawValue
            var line = state + String(repeating: " ", count: max(1, 9 - state.count)) + entry.name
            switch (entry.state, entry.kind) {
            case (.applied, _): line += "  (applied \(entry.appliedAt ?? "?"))"
            case (.pending, _): line += "  (will be applied)"
            case (.changed, .repeatable): line += "  (will be re-applied)"
            case (.changed, .numbered): line += "  (edited after it was applied: migrate refuses to run)"
            }
            return line
        }.joined(separator: "\n")
    }
}
