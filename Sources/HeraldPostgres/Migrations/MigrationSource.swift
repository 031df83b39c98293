import Crypto
import Foundation

/// How a migration is applied: once (numbered) or again whenever its content changes (repeatable).
public enum MigrationKind: String, Sendable, Hashable {
    /// `NNNN_name.sql`: applied once, in number order; editing it afterwards is an error.
    case numbered
    /// `CREATE OR REPLACE ...` definitions: re-applied whenever the checksum changes.
    case repeatable
}

/// One migration as the migrator sees it.
public struct MigrationFile: Sendable, Hashable {
    /// The name recorded in `herald.schema_migrations`: `<namespace>/<file name>`, e.g. `herald/0001_realtime.sql`.
    public let name: String
    /// Numbered or repeatable.
    public let kind: MigrationKind
    /// The SQL script.
    public let sql: String
    /// SHA-256 of the SQL text, lowercase hex.
    public let checksum: String

    /// Creates a migration and computes its checksum.
    public init(name: String, kind: MigrationKind, sql: String) {
        self.name = name
        self.kind = kind
        self.sql = sql
        self.checksum = SHA256.hash(data: Array(sql.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}

/// The migrations of one owner (Herald's own, or the application's): numbered files in number order,
/// then repeatable files in name order. Names are recorded as `<namespace>/<file name>`.
public struct MigrationSource: Sendable, Hashable {
    /// `herald` or `app`, the prefix of recorded names.
    public let namespace: String
    /// The files in the order they are applied.
    public let files: [MigrationFile]

    /// Creates a source from file names and SQL texts (e.g. `HeraldSQL.numberedFiles()`).
    /// - Throws: ``MigrationError`` `.invalidFile` for a numbered name without a number, two numbered files
    ///   with the same number, or a name used twice.
    public init(
        namespace: String,
        numbered: [(name: String, sql: String)],
        repeatable: [(name: String, sql: String)] = []
    ) throws(MigrationError) {
        var numberedFiles: [(number: Int, name: String, sql: String)] = []
        for file in numbered {
            guard let number = Self.number(of: file.name) else {
                throw MigrationError(
                    code: .invalidFile,
                    files: [file.name],
                    message: "a numbered migration must be named NNNN_name.sql"
                )
            }
            if let twin = numberedFiles.first(where: { $0.number == number }) {
                throw MigrationError(code: .invalidFile, files: [twin.name, file.name], message: "two migrations share number \(number)")
            }
            numberedFiles.append((number, file.name, file.sql))
        }
        numberedFiles.sort { ($0.number, $0.name) < ($1.number, $1.name) }
        let ordered =
            numberedFiles.map { MigrationFile(name: "\(namespace)/\($0.name)", kind: .numbered, sql: $0.sql) }
            + repeatable.sorted { $0.name < $1.name }.map { MigrationFile(name: "\(namespace)/\($0.name)", kind: .repeatable, sql: $0.sql) }
        let names = ordered.map(\.name)
        if let duplicate = names.first(where: { name in names.filter { $0 == name }.count > 1 }) {
            throw MigrationError(code: .invalidFile, files: [duplicate], message: "a migration name is used twice")
        }
        self.namespace = namespace
        self.files = ordered
    }

    /// Loads the `.sql` files of a numbered folder and an optional repeatable folder.
    /// - Throws: ``MigrationError`` `.invalidFile` when a folder or file cannot be read, or names break the rules.
    public static func directory(namespace: String, numbered: URL?, repeatable: URL? = nil) throws(MigrationError) -> MigrationSource {
        try MigrationSource(
            namespace: namespace,
            numbered: numbered.map { url throws(MigrationError) in try readSQLFiles(in: url) } ?? [],
            repeatable: repeatable.map { url throws(MigrationError) in try readSQLFiles(in: url) } ?? []
        )
    }

    /// The leading number of `NNNN_name.sql`, or `nil` when the name does not have that shape.
    static func number(of fileName: String) -> Int? {
        let digits = fileName.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, fileName.dropFirst(digits.count).hasPrefix("_"), fileName.hasSuffix(".sql") else { return nil }
        return Int(digits)
    }

    private static func readSQLFiles(in directory: URL) throws(MigrationError) -> [(name: String, sql: String)] {
        do {
            let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".sql") }
            return try names.map { name in
                (name, try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
            }
        } catch {
            throw MigrationError(code: .invalidFile, files: [directory.path], message: "cannot read migrations (\(error.localizedDescription))")
        }
    }
}
