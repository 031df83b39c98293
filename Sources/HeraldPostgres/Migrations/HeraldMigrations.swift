import Foundation
import HeraldSQL

/// The migrations `herald migrate` applies: Herald's own SQL (shipped in the binary) first, then the
/// application's numbered files.
public enum HeraldMigrations {
    /// `appMigrations` is the application's folder of `NNNN_name.sql` files; nil or a missing folder means none.
    public static func migrator(appMigrations: URL?) throws -> Migrator {
        let herald = try MigrationSource(
            namespace: "herald",
            numbered: try HeraldSQL.numberedFiles().map { ($0.name, $0.sql) },
            repeatable: try HeraldSQL.repeatableFiles().map { ($0.name, $0.sql) }
        )
        var sources = [herald]
        if let appMigrations, FileManager.default.fileExists(atPath: appMigrations.path) {
            sources.append(try MigrationSource.directory(namespace: "app", numbered: appMigrations))
        }
        return try Migrator(sources: sources)
    }
}
