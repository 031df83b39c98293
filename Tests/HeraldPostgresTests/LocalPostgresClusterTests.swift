import Foundation
import HeraldPostgres
import Testing

@Suite("LocalPostgresCluster")
struct LocalPostgresClusterTests {
    @Test func restartsWithItsDataAndStartIsIdempotent() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-cluster-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let cluster = LocalPostgresCluster(directory: directory, port: try LocalPostgresCluster.freePort(), options: .init(durable: false))
        defer { try? cluster.stop(immediately: true) }

        try cluster.start()
        try cluster.start()
        let elsewhere = LocalPostgresCluster(directory: directory, port: cluster.port + 1)
        #expect(throws: LocalClusterError.self) { try elsewhere.start() }
        try PGConnection(url: cluster.databaseURL()).executeScript("CREATE TABLE kept (id int); INSERT INTO kept VALUES (7);")
        try cluster.stop()
        #expect(throws: PostgresError.self) { try PGConnection(url: cluster.databaseURL()) }

        try cluster.start()
        let connection = try PGConnection(url: cluster.databaseURL())
        #expect(try connection.execute("SELECT id FROM kept")[0]["id"] == "7")
        #expect(try connection.execute("SHOW wal_level")[0]["wal_level"] == "logical")
        #expect(try connection.execute("SHOW listen_addresses")[0]["listen_addresses"] == "127.0.0.1")
    }
}
