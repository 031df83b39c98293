import Foundation
import HeraldPostgres
import HeraldSQL
import HeraldTestSupport
import Testing

@Suite("Migrator")
struct MigratorTests {
    /// A scratch folder of app migrations, deleted by the caller.
    struct AppFolder {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("herald-migrations-\(UUID().uuidString)")
        var numbered: URL { root.appendingPathComponent("numbered") }
        var repeatable: URL { root.appendingPathComponent("repeatable") }

        init() throws {
            try FileManager.default.createDirectory(at: numbered, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(at: repeatable, withIntermediateDirectories: true)
        }

        func write(_ name: String, _ sql: String, repeatable isRepeatable: Bool = false) throws {
            try sql.write(to: (isRepeatable ? repeatable : numbered).appendingPathComponent(name), atomically: true, encoding: .utf8)
        }

        func migrator() throws -> Migrator {
            let herald = try MigrationSource(
                namespace: "herald",
                numbered: try HeraldSQL.numberedFiles().map { ($0.name, $0.sql) },
                repeatable: try HeraldSQL.repeatableFiles().map { ($0.name, $0.sql) }
            )
            let app = try MigrationSource.directory(namespace: "app", numbered: numbered, repeatable: repeatable)
            return try Migrator(sources: [herald, app])
        }

        func remove() { try? FileManager.default.removeItem(at: root) }
    }

    @Test func heraldSQLShipsItsFiles() throws {
        #expect(try HeraldSQL.numberedFiles().map(\.name) == ["0001_realtime.sql", "0002_messages.sql", "0003_roles.sql"])
        #expect(try HeraldSQL.repeatableFiles().map(\.name) == ["authorization.sql", "broadcast.sql", "capture.sql"])
    }

    @Test func appliesInOrderOnceAndThenNothing() async throws {
        let folder = try AppFolder()
        defer { folder.remove() }
        try folder.write("0002_second.sql", "ALTER TABLE first ADD COLUMN note text;")
        try folder.write("0001_first.sql", "CREATE TABLE first (id int PRIMARY KEY); SELECT realtime.enable_capture('first');")
        try folder.write("views.sql", "CREATE OR REPLACE VIEW first_ids AS SELECT id FROM first;", repeatable: true)
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        let migrator = try folder.migrator()

        #expect(try migrator.status(on: connection).toApply.count == 9)
        let applied = try migrator.migrate(on: connection)
        #expect(
            applied == [
                "herald/0001_realtime.sql", "herald/0002_messages.sql", "herald/0003_roles.sql", "herald/authorization.sql",
                "herald/broadcast.sql", "herald/capture.sql",
                "app/0001_first.sql", "app/0002_second.sql", "app/views.sql",
            ]
        )
        #expect(try migrator.migrate(on: connection).isEmpty)

        let status = try migrator.status(on: connection)
        #expect(status.isUpToDate)
        #expect(status.entries.allSatisfy { $0.state == .applied && $0.appliedAt != nil })
        let kinds = try connection.execute("SELECT name, kind FROM herald.schema_migrations ORDER BY name").map { "\($0["name"] ?? "")=\($0["kind"] ?? "")" }
        #expect(kinds.contains("herald/capture.sql=repeatable"))
        #expect(kinds.contains("app/0002_second.sql=numbered"))
        #expect(try connection.execute("SELECT count(*) AS n FROM realtime.captured_tables()")[0]["n"] == "1")
    }

    @Test func editedAppliedMigrationStopsEverything() async throws {
        let folder = try AppFolder()
        defer { folder.remove() }
        try folder.write("0001_first.sql", "CREATE TABLE first (id int);")
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        try folder.migrator().migrate(on: connection)

        try folder.write("0001_first.sql", "CREATE TABLE first (id bigint);")
        try folder.write("0002_second.sql", "CREATE TABLE second (id int);")
        let migrator = try folder.migrator()
        let error = #expect(throws: MigrationError.self) { try migrator.migrate(on: connection) }
        #expect(error?.code == .changedAfterApplied)
        #expect(error?.files == ["app/0001_first.sql"])
        #expect(try connection.execute("SELECT to_regclass('second') IS NULL AS absent")[0]["absent"] == "t")

        let status = try migrator.status(on: connection)
        #expect(status.changedNumbered == ["app/0001_first.sql"])
        #expect(status.entries.last?.state == .pending)
        #expect("\(status)".contains("edited after it was applied"))
    }

    @Test func changedRepeatableFileIsReapplied() async throws {
        let folder = try AppFolder()
        defer { folder.remove() }
        try folder.write("answer.sql", "CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 41';", repeatable: true)
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        try folder.migrator().migrate(on: connection)

        try folder.write("answer.sql", "CREATE OR REPLACE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42';", repeatable: true)
        let migrator = try folder.migrator()
        #expect(try migrator.status(on: connection).entries.last?.state == .changed)
        #expect(try migrator.migrate(on: connection) == ["app/answer.sql"])
        #expect(try connection.execute("SELECT answer() AS a")[0]["a"] == "42")
    }

    @Test func failingMigrationIsRolledBackAndStopsTheRun() async throws {
        let folder = try AppFolder()
        defer { folder.remove() }
        try folder.write("0001_good.sql", "CREATE TABLE good (id int);")
        try folder.write("0002_bad.sql", "CREATE TABLE half (id int); SELECT no_such_function();")
        try folder.write("0003_after.sql", "CREATE TABLE after (id int);")
        let connection = try PGConnection(url: try await TestPostgres.shared.makeDatabase())
        let migrator = try folder.migrator()
        let error = #expect(throws: MigrationError.self) { try migrator.migrate(on: connection) }
        #expect(error?.code == .failed)
        #expect(error?.files == ["app/0002_bad.sql"])
        #expect(error?.underlying?.sqlState == "42883")
        let tables = try connection.execute(
            "SELECT to_regclass('good') IS NOT NULL AS good, to_regclass('half') IS NULL AS no_half, to_regclass('after') IS NULL AS no_after"
        )[0]
        #expect(tables.values == ["t", "t", "t"])
        #expect(try migrator.status(on: connection).toApply == ["app/0002_bad.sql", "app/0003_after.sql"])
    }

    @Test func concurrentMigratorsDoNotRace() async throws {
        let url = try await TestPostgres.shared.makeDatabase()
        let migrator = try HeraldMigrations.migrator(appMigrations: TestPostgres.repositoryMigrations)
        async let first = Task.detached { try migrator.migrate(on: PGConnection(url: url)) }.value
        async let second = Task.detached { try migrator.migrate(on: PGConnection(url: url)) }.value
        let results = try await [first, second]
        #expect(results.map(\.count).sorted() == [0, migrator.files.count])
    }

    @Test func invalidSourcesAreRejected() {
        #expect(throws: MigrationError.self) { try MigrationSource(namespace: "app", numbered: [("first.sql", "")]) }
        #expect(throws: MigrationError.self) { try MigrationSource(namespace: "app", numbered: [("0001_a.sql", ""), ("1_b.sql", "")]) }
        #expect(throws: MigrationError.self) {
            let source = try MigrationSource(namespace: "app", numbered: [("0001_a.sql", "")])
            return try Migrator(sources: [source, source])
        }
    }

    @Test func numberedFilesSortByNumber() throws {
        let source = try MigrationSource(namespace: "app", numbered: [("10_ten.sql", ""), ("0002_two.sql", ""), ("1_one.sql", "")], repeatable: [("b.sql", ""), ("a.sql", "")])
        #expect(source.files.map(\.name) == ["app/1_one.sql", "app/0002_two.sql", "app/10_ten.sql", "app/a.sql", "app/b.sql"])
        #expect(source.files.first?.checksum == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }

    @Test func newMigrationTakesTheNextNumberAndASanitizedName() throws {
        let folder = try AppFolder()
        defer { folder.remove() }
        let first = try Migrator.newMigration(name: "Create chat", in: folder.numbered)
        #expect(first.lastPathComponent == "0001_create_chat.sql")
        try folder.write("0007_existing.sql", "")
        let next = try Migrator.newMigration(name: "  Add Things! (v2) ", in: folder.numbered)
        #expect(next.lastPathComponent == "0008_add_things_v2.sql")
        #expect(try String(contentsOf: next, encoding: .utf8) == "-- add_things_v2\n")
        let fresh = try Migrator.newMigration(name: "x", in: folder.root.appendingPathComponent("new-folder"))
        #expect(fresh.lastPathComponent == "0001_x.sql")
        let error = #expect(throws: MigrationError.self) { try Migrator.newMigration(name: "!!!", in: folder.numbered) }
        #expect(error?.code == .invalidName)
    }
}
