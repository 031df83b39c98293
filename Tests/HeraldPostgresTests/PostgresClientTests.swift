import HeraldPostgres
import HeraldTestSupport
import Testing

@Suite("PostgresClient")
struct PostgresClientTests {
    @Test func queriesRunInOrder() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeDatabase())
        defer { client.close() }
        _ = try await client.query("CREATE TABLE log (position int)")
        for position in 1...20 {
            _ = try await client.query("INSERT INTO log VALUES ($1)", [String(position)])
        }
        let rows = try await client.query("SELECT string_agg(position::text, ',' ORDER BY position) AS positions FROM log")
        #expect(rows[0]["positions"] == (1...20).map(String.init).joined(separator: ","))
    }

    @Test func reconnectsAfterTheConnectionIsKilled() async throws {
        let url = try await TestPostgres.shared.makeDatabase()
        let client = PostgresClient(databaseURL: url, applicationName: "client-under-test")
        defer { client.close() }
        let firstPID = try await client.withConnection { $0.backendPID }
        let killer = try PGConnection(url: url)
        _ = try killer.execute("SELECT pg_terminate_backend($1::int)", params: [String(firstPID)])
        // The call that finds the connection dead fails (or succeeds if the kill was slow); the next one reconnects.
        _ = try? await client.query("SELECT 1")
        let secondPID = try await client.withConnection { $0.backendPID }
        #expect(secondPID != firstPID)
        #expect(try await client.query("SELECT 2 AS two")[0]["two"] == "2")
    }

    @Test func abandonedTransactionsAreRolledBack() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeDatabase())
        defer { client.close() }
        _ = try await client.query("CREATE TABLE things (id int)")
        try await client.withConnection { connection in
            _ = try connection.execute("BEGIN")
            _ = try connection.execute("INSERT INTO things VALUES (1)")
        }
        #expect(try await client.query("SELECT count(*) AS n FROM things")[0]["n"] == "0")
    }

    @Test func closedClientRejectsCalls() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeDatabase())
        client.close()
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == .clientClosed)
    }

    @Test func connectionErrorsReachTheCaller() async throws {
        let client = PostgresClient(databaseURL: "postgres://u@127.0.0.1:\(try LocalPostgresCluster.freePort())/db")
        defer { client.close() }
        let error = await #expect(throws: PostgresError.self) { try await client.query("SELECT 1") }
        #expect(error?.code == .connectionFailed)
    }
}
