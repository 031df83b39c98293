import Foundation
import HeraldCore
import HeraldPostgres
@testable import HeraldServer
import HeraldTestSupport
import Logging
import Synchronization
import Testing

/// The replication change source as the server runs it, with a recording sink in place of the hub.
@Suite("ReplicationSource", .serialized)
struct ReplicationSourceTests {
    final class RecordingSink: ChangeSink {
        private let recorded = Mutex<(changes: [Change], gaps: [String])>(([], []))

        func dispatch(_ change: Change) { recorded.withLock { $0.changes.append(change) } }
        func reportGap(_ message: String) { recorded.withLock { $0.gaps.append(message) } }
        var hasQueuedChanges: Bool { false }

        var gaps: [String] { recorded.withLock { $0.gaps } }

        /// Waits until `count` changes have been dispatched and returns them all.
        func changes(count: Int, timeout: Duration = .seconds(20)) async throws -> [Change] {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                let changes = recorded.withLock { $0.changes }
                if changes.count >= count { return changes }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw HarnessError("fewer than \(count) changes within \(timeout)")
        }
    }

    static let room = "00000000-0000-0000-0000-0000000000cc"

    /// Runs a replication source on a fresh migrated database for the duration of `body`, then drops its slot.
    func withSource(_ body: (RecordingSink, PostgresClient, String) async throws -> Void) async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let database = PostgresClient(databaseURL: url)
        defer { database.close() }
        let slot = "test_" + UUID().uuidString.prefix(8).lowercased()
        let sink = RecordingSink()
        let logger = Logger(label: "herald.test")
        let source = ReplicationSource(
            databaseURL: url,
            publication: "herald",
            stream: try ReplicationStream(databaseURL: url, configuration: .init(slot: slot), logger: logger),
            database: database,
            log: ChangeLog(),
            sink: sink,
            catalog: TableCatalog(load: { try await TableCatalog.load(from: database) }, canAssumeRole: { _ in true }),
            logger: logger
        )
        try await source.prepare()
        let running = Task { try await source.run() }
        do {
            try await waitForSlot(slot, database)
            try await body(sink, database, slot)
        } catch {
            running.cancel()
            _ = try? await running.value
            throw error
        }
        running.cancel()
        _ = try? await running.value
        try await dropReplicationSlot(slot, databaseURL: url)
    }

    /// Waits until a WAL sender streams from the slot (while the slot is being created, its creator holds it).
    func waitForSlot(_ slot: String, _ database: PostgresClient) async throws {
        for _ in 0..<400 {
            let active = try await database.query(
                "SELECT 1 FROM pg_replication_slots s JOIN pg_stat_activity a ON a.pid = s.active_pid WHERE s.slot_name = $1 AND a.backend_type = 'walsender'",
                [slot]
            )
            if !active.isEmpty { return }
            try await Task.sleep(for: .milliseconds(25))
        }
        throw HarnessError("replication slot \(slot) never became active")
    }

    @Test func dispatchesCapturedTablesAndFollowsCaptureChanges() async throws {
        try await withSource { sink, database, _ in
            // The chat migrations capture messages and message_receipts: both are published at start-up.
            let published = try await database.query("SELECT tablename::text FROM pg_publication_tables WHERE pubname = 'herald' ORDER BY 1")
            #expect(published.map { $0[0] } == ["message_receipts", "messages"])
            _ = try await database.query("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'hi')", [Self.room])
            let first = try await sink.changes(count: 1)
            #expect(first[0].table == "messages" && first[0].record?["content"] == "hi")
            let now = Int64(Date().timeIntervalSince1970 * 1_000_000)
            #expect(abs(first[0].commitTimestamp - now) < 60_000_000)

            // Capture turned on while running: the table joins the publication and its changes follow.
            _ = try await database.query("CREATE TABLE late (id int PRIMARY KEY)")
            _ = try await database.query("SELECT realtime.enable_capture('late')")
            for _ in 0..<400 {
                let rows = try await database.query("SELECT 1 FROM pg_publication_tables WHERE pubname = 'herald' AND tablename = 'late'")
                if !rows.isEmpty { break }
                try await Task.sleep(for: .milliseconds(25))
            }
            _ = try await database.query("INSERT INTO late VALUES (7)")
            let changes = try await sink.changes(count: 2)
            #expect(changes[1].table == "late" && changes[1].record == ["id": 7])
            #expect(sink.gaps.isEmpty)
            // The WAL carries the changes: the capture triggers, new ones included, are turned off.
            #expect(try await Self.triggerStates(database) == ["D", "D", "D"])
        }
    }

    /// `tgenabled` of every capture trigger (`O` on, `D` off), once it settled.
    static func triggerStates(_ database: PostgresClient) async throws -> [String?] {
        var states: [String?] = []
        for _ in 0..<200 {
            states = try await database.query("SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'herald_capture' ORDER BY tgrelid").map { $0[0] }
            if Set(states).count == 1 { break }
            try await Task.sleep(for: .milliseconds(25))
        }
        return states
    }

    @Test func aRecreatedSlotIsReportedAsAGap() async throws {
        try await withSource { sink, database, slot in
            // Terminate the walsender and drop the slot before the stream reconnects (its first retry waits 100 ms).
            _ = try await database.query(
                """
                DO $$
                DECLARE pid int;
                BEGIN
                  SELECT active_pid INTO pid FROM pg_replication_slots WHERE slot_name = '\(slot)';
                  PERFORM pg_terminate_backend(pid, 5000);
                  PERFORM pg_drop_replication_slot('\(slot)');
                END
                $$
                """
            )
            for _ in 0..<400 where sink.gaps.isEmpty {
                try await Task.sleep(for: .milliseconds(25))
            }
            #expect(sink.gaps == [ReplicationSource.lostSlotMessage])
            try await waitForSlot(slot, database)
            _ = try await database.query("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'after')", [Self.room])
            #expect(try await sink.changes(count: 1).last?.record?["content"] == "after")
        }
    }

    /// A channel is told "Subscribed to PostgreSQL" only for tables the catalog has loaded, and the replication
    /// source publishes every load before the catalog uses it: also when capture was turned on after the cache was
    /// filled and the notification that would publish the table has not been handled yet.
    @Test func theCatalogPublishesWhatItLoadsBeforeAJoinUsesIt() async throws {
        let captured = Mutex<[String]>([])
        let events = Mutex<[String]>([])
        let catalog = TableCatalog(
            load: {
                let names = captured.withLock { $0 }
                events.withLock { $0.append("load \(names)") }
                return names.map { TableCatalog.Table(schema: "public", name: $0, columns: [Column(name: "id", type: "int4")]) }
            },
            canAssumeRole: { _ in true }
        )
        await catalog.publishBeforeUse { events.withLock { $0.append("publish") } }
        let fresh = BindingRequest(raw: ["event": "INSERT", "schema": "public", "table": "fresh"])
        let before = await catalog.resolve([fresh], role: "authenticated")
        if case .success = before { Issue.record("a table that is not captured was subscribed") }
        captured.withLock { $0 = ["fresh"] }
        let after = await catalog.resolve([fresh], role: "authenticated")
        #expect((try? after.get())?.map(\.table) == ["fresh"])
        #expect(events.withLock { $0 } == ["load []", "publish", "load []", "publish", "load [\"fresh\"]", "publish"])
    }

    @Test func theSourceIsChosenFromTheServerAndTheConfiguration() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let database = PostgresClient(databaseURL: url)
        defer { database.close() }
        let catalog = TableCatalog(load: { [] }, canAssumeRole: { _ in true })
        let hub = Hub(catalog: catalog, logger: Logger(label: "herald.test"))
        func chosen(_ kind: ChangeSourceConfiguration.Kind?) async throws -> String {
            let service = try await ChangeSources.replicationSource(
                ChangeSourceConfiguration(kind: kind),
                databaseURL: url,
                database: database,
                hub: hub,
                catalog: catalog,
                logger: Logger(label: "herald.test")
            )
            return service.map { "\($0)" } ?? "trigger"
        }
        // The test cluster runs with wal_level=logical, as a superuser.
        #expect(try await chosen(nil) == "ReplicationSource")
        #expect(try await chosen(.replication) == "ReplicationSource")
        #expect(try await Self.triggerStates(database) == ["D", "D"])
        #expect(try await chosen(.trigger) == "trigger")
        // The trigger source turns the capture triggers back on.
        #expect(try await Self.triggerStates(database) == ["O", "O"])
    }
}
