import HeraldCore
import HeraldPostgres
import HeraldTestSupport
import Testing

@Suite("Publication sync")
struct PublicationSyncTests {
    let a = TableName(schema: "public", table: "a")
    let b = TableName(schema: "public", table: "b")
    let c = TableName(schema: "other", table: "c")

    @Test func planAddsDropsAndLeavesOutTablesWithoutIdentity() {
        #expect(
            PublicationPlan.plan(current: [a, c], wanted: [a, b, c], withoutIdentity: [c])
                == PublicationPlan(add: [b], drop: [c], withoutIdentity: [c])
        )
        #expect(PublicationPlan.plan(current: [], wanted: [], withoutIdentity: []) == PublicationPlan(add: [], drop: [], withoutIdentity: []))
    }

    @Test func publishesExactlyTheTablesWithAReplicaIdentity() async throws {
        let connection = TestSQL(url: try await TestPostgres.shared.makeDatabase())
        try await connection.executeScript(
            """
            CREATE SCHEMA "odd schema";
            CREATE TABLE "odd schema"."Keyed" (id int PRIMARY KEY);
            CREATE TABLE keyless (line text);
            CREATE TABLE everything (line text);
            ALTER TABLE everything REPLICA IDENTITY FULL;
            CREATE TABLE dropped_later (id int PRIMARY KEY);
            """
        )
        let keyed = TableName(schema: "odd schema", table: "Keyed")
        let keyless = TableName(schema: "public", table: "keyless")
        let everything = TableName(schema: "public", table: "everything")
        let droppedLater = TableName(schema: "public", table: "dropped_later")
        let first = try await connection.synchronizePublication("herald", tables: [keyed, keyless, everything, droppedLater])
        #expect(first == PublicationPlan(add: [keyed, everything, droppedLater], drop: [], withoutIdentity: [keyless]))
        // The keyless table stays writable: it is not published.
        _ = try await connection.execute("INSERT INTO keyless VALUES ('x')")
        _ = try await connection.execute("UPDATE keyless SET line = 'y'")
        let second = try await connection.synchronizePublication("herald", tables: [keyed, everything])
        #expect(second == PublicationPlan(add: [], drop: [droppedLater], withoutIdentity: []))
        let published = try await connection.execute("SELECT schemaname || '.' || tablename FROM pg_publication_tables WHERE pubname = 'herald' ORDER BY 1")
        #expect(published.map { $0[0] } == ["odd schema.Keyed", "public.everything"])
    }

    @Test func leavesAPublicationForAllTablesAlone() async throws {
        let connection = TestSQL(url: try await TestPostgres.shared.makeDatabase())
        try await connection.executeScript("CREATE TABLE t (id int PRIMARY KEY); CREATE PUBLICATION herald FOR ALL TABLES;")
        #expect(
            try await connection.synchronizePublication("herald", tables: [TableName(schema: "public", table: "t")])
                == PublicationPlan(add: [], drop: [], withoutIdentity: [])
        )
    }
}
