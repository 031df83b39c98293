import Foundation

/// Herald's own SQL, shipped inside the binary as resources of this module:
/// numbered migrations from `schema/` and repeatable definitions (functions, triggers) from `realtime/`.
public enum HeraldSQL {
    /// One SQL file: its file name (e.g. `0001_realtime.sql`) and its text.
    public struct File: Sendable, Hashable {
        /// The file name, without folder.
        public let name: String
        /// The SQL text.
        public let sql: String
    }

    /// The numbered migrations (`NNNN_name.sql`), sorted by name.
    public static func numberedFiles() throws -> [File] {
        try files(in: "schema")
    }

    /// The repeatable definitions (`CREATE OR REPLACE ...`), sorted by name.
    public static func repeatableFiles() throws -> [File] {
        try files(in: "realtime")
    }

    private static func files(in folder: String) throws -> [File] {
        guard let directory = Bundle.module.url(forResource: folder, withExtension: nil) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSFilePathErrorKey: folder])
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".sql") }
            .sorted()
        return try names.map { name in
            File(name: name, sql: try String(contentsOf: directory.appendingPathComponent(name), encoding: .utf8))
        }
    }
}
