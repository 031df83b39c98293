import Foundation
import HeraldCore
import HeraldPostgres
import HeraldTestSupport
import Testing

/// The replication stream against a real PostgreSQL. Serialized: slots and WAL senders are limited per cluster.
@Suite("ReplicationStream", .serialized)
struct ReplicationStreamTests {
    static let room = "00000000-0000-0000-0000-0000000000aa"

    @Test func streamsInsertUpdateDeleteOfMessages() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE messages")
        try await withReplication(url: url) { events, _ in
            let id = try await connection.execute(
                "INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'hello') RETURNING id::text",
                params: [Self.room]
            )[0]["id"]
            let inserted = try await events.nextChanges()
            #expect(inserted.count == 1)
            #expect(inserted[0].schema == "public" && inserted[0].table == "messages" && inserted[0].type == .insert)
            #expect(inserted[0].columns.map(\.name) == ["id", "room_id", "sender_id", "content", "created_at", "edited_at", "deleted_at"])
            #expect(inserted[0].columns.map(\.type) == ["uuid", "uuid", "uuid", "text", "timestamptz", "timestamptz", "timestamptz"])
            #expect(inserted[0].record?["content"] == "hello")
            #expect(inserted[0].record?["edited_at"] == .null)
            #expect(inserted[0].record?["created_at"]?.stringValue?.hasSuffix("+00:00") == true)

            _ = try await connection.execute("UPDATE messages SET content = 'edited' WHERE id = $1", params: [id])
            let updated = try await events.nextChanges()
            #expect(updated.first?.record?["content"] == "edited")
            #expect(updated.first?.oldRecord == ["id": .string(id ?? "")])

            _ = try await connection.execute("DELETE FROM messages WHERE id = $1", params: [id])
            let deleted = try await events.nextChanges()
            #expect(deleted.first?.type == .delete)
            #expect(deleted.first?.record == nil)
            #expect(deleted.first?.oldRecord == ["id": .string(id ?? "")])
        }
    }

    @Test func commitTimestampIsTheTransactionsCommitTime() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE TABLE ticks (id int PRIMARY KEY)")
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE ticks")
        try await withReplication(url: url) { events, _ in
            let before = Int64(Date().timeIntervalSince1970 * 1_000_000)
            try await connection.executeScript("BEGIN; INSERT INTO ticks VALUES (1); SELECT pg_sleep(0.2); INSERT INTO ticks VALUES (2); COMMIT;")
            let after = Int64(Date().timeIntervalSince1970 * 1_000_000)
            let (changes, commit) = try await events.nextTransaction()
            #expect(changes.map(\.commitTimestamp) == [commit.commitTimestamp, commit.commitTimestamp])
            // Stamped at commit, after the sleep, not at the first insert.
            #expect(commit.commitTimestamp >= before + 200_000 && commit.commitTimestamp <= after)
        }
    }

    @Test func replicaIdentityAndUnchangedToast() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        try await connection.executeScript(
            """
            CREATE TABLE notes (id int PRIMARY KEY, body text, tag text);
            ALTER TABLE notes ALTER COLUMN body SET STORAGE EXTERNAL;
            CREATE PUBLICATION herald FOR TABLE notes;
            """
        )
        let body = JSONValue.string(String(repeating: "b", count: 4000))
        try await withReplication(url: url) { events, _ in
            _ = try await connection.execute("INSERT INTO notes VALUES (1, repeat('b', 4000), 'a')")
            #expect(try await events.nextChanges().first?.record == ["id": 1, "body": body, "tag": "a"])

            // Default identity: no old row is sent, so the unchanged TOASTed body cannot be known: left out.
            _ = try await connection.execute("UPDATE notes SET tag = 'b'")
            let defaultIdentity = try await events.nextChanges().first
            #expect(defaultIdentity?.record == ["id": 1, "tag": "b"])
            #expect(defaultIdentity?.oldRecord == ["id": 1])

            // FULL identity: the old row carries the body, which fills the new record.
            _ = try await connection.execute("ALTER TABLE notes REPLICA IDENTITY FULL")
            _ = try await connection.execute("UPDATE notes SET tag = 'c'")
            let full = try await events.nextChanges().first
            #expect(full?.record == ["id": 1, "body": body, "tag": "c"])
            #expect(full?.oldRecord == ["id": 1, "body": body, "tag": "b"])

            _ = try await connection.execute("DELETE FROM notes")
            #expect(try await events.nextChanges().first?.oldRecord == ["id": 1, "body": body, "tag": "c"])
        }
    }

    @Test func aOneMebibyteRowArrivesWhole() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE messages")
        let big = String(repeating: "x", count: 1 << 20)
        try await withReplication(url: url) { events, _ in
            for content in ["before", big, "after"] {
                _ = try await connection.execute("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, $2)", params: [Self.room, content])
            }
            for expected in ["before", big, "after"] {
                #expect(try await events.nextChanges().first?.record?["content"]?.stringValue == expected)
            }
        }
    }

    @Test func aHundredThousandRowTransactionStreamsThrough() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE TABLE bulk (id int PRIMARY KEY, filler text)")
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE bulk")
        let recorder = ReplicationRecorder(keepChanges: false)
        try await withReplication(url: url, recorder: recorder) { events, _ in
            let residentBefore = Self.residentBytes()
            _ = try await connection.execute("INSERT INTO bulk SELECT g, repeat('f', 1000) FROM generate_series(1, 100000) g")
            guard case .begin = try await events.next(timeout: .seconds(60)) else {
                Issue.record("expected the transaction to begin")
                return
            }
            guard case .commit = try await events.next(timeout: .seconds(120)) else {
                Issue.record("expected the transaction to commit")
                return
            }
            #expect(events.changeCount == 100_000)
            // About 100 MB of row text went through; streamed, the process only ever holds a few rows of it.
            let growth = Self.residentBytes() - residentBefore
            #expect(growth < 64 << 20, "resident memory grew by \(growth >> 20) MiB")
        }
    }

    @Test func recoversFromTerminationOfTheWalSender() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE TABLE ticks (id int PRIMARY KEY)")
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE ticks")
        let slot = uniqueSlotName()
        try await withReplication(url: url, slot: slot) { events, _ in
            _ = try await connection.execute("INSERT INTO ticks VALUES (1)")
            #expect(try await events.nextChanges().first?.record == ["id": 1])
            let killed = try await connection.execute(
                "SELECT pg_terminate_backend(active_pid) AS killed FROM pg_replication_slots WHERE slot_name = $1",
                params: [slot]
            )
            #expect(killed.map { $0["killed"] } == ["t"])
            guard case .connectionLost(let reason) = try await events.next() else {
                Issue.record("expected .connectionLost")
                return
            }
            #expect(reason.contains("terminating connection"))
            #expect(try await events.next() == .streaming(reconnected: true, slotRecreated: false))
            _ = try await connection.execute("INSERT INTO ticks VALUES (2)")
            // Row 1 is not delivered again.
            #expect(try await events.nextChanges().first?.record == ["id": 2])
        }
    }

    @Test func answersKeepalivesSoTheServerNeverTimesTheStreamOut() async throws {
        // A 1 s wal_sender_timeout: the server asks for a reply every 0.5 s, far more often than Herald's own
        // 10 s status updates, and drops the stream when none comes.
        let url = try await TestPostgres.shared.makeMigratedDatabase() + "?options=-c%20wal_sender_timeout%3D1s"
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE TABLE ticks (id int PRIMARY KEY)")
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE ticks")
        try await withReplication(url: url) { events, _ in
            try await Task.sleep(for: .seconds(4))
            #expect(events.pending.isEmpty)
            _ = try await connection.execute("INSERT INTO ticks VALUES (1)")
            #expect(try await events.nextChanges().first?.record == ["id": 1])
        }
    }

    @Test func recreatesADroppedSlot() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE TABLE ticks (id int PRIMARY KEY)")
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE ticks")
        let slot = uniqueSlotName()
        // A long first backoff leaves time to drop the slot before the stream comes back.
        let backoff = ListenerStateMachine.Backoff(initial: .seconds(2), maximum: .seconds(2))
        try await withReplication(url: url, slot: slot, backoff: backoff) { events, _ in
            _ = try await connection.execute(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = $1",
                params: [slot]
            )
            guard case .connectionLost = try await events.next() else {
                Issue.record("expected .connectionLost")
                return
            }
            try await dropSlot(slot, url: url)
            #expect(try await events.next() == .streaming(reconnected: true, slotRecreated: true))
            _ = try await connection.execute("INSERT INTO ticks VALUES (3)")
            #expect(try await events.nextChanges().first?.record == ["id": 3])
        }
    }

    @Test func createsAMissingPublicationEmpty() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        try await withReplication(url: url, publication: "herald_test") { _, _ in
            let tables = try await connection.execute(
                "SELECT count(*) AS n FROM pg_publication p LEFT JOIN pg_publication_rel r ON r.prpubid = p.oid WHERE p.pubname = 'herald_test' AND r.prrelid IS NOT NULL"
            )
            #expect(tables[0]["n"] == "0")
            #expect(try await connection.execute("SELECT 1 FROM pg_publication WHERE pubname = 'herald_test'").count == 1)
        }
    }

    @Test func theSlotAdvancesOnlyPastAcknowledgedTransactions() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = TestSQL(url: url)
        _ = try await connection.execute("CREATE TABLE ticks (id int PRIMARY KEY)")
        _ = try await connection.execute("CREATE PUBLICATION herald FOR TABLE ticks")
        let slot = uniqueSlotName()
        try await withReplication(url: url, slot: slot, acknowledge: false) { events, stream in
            func confirmed() async throws -> LSN {
                let rows = try await connection.execute("SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1", params: [slot])
                return rows.first?["lsn"].flatMap(LSN.init) ?? .zero
            }
            _ = try await connection.execute("INSERT INTO ticks VALUES (1)")
            let (_, commit) = try await events.nextTransaction()
            try await Task.sleep(for: .milliseconds(500))
            #expect(try await confirmed() < commit.endLSN)
            stream.acknowledge(commit.endLSN)
            let deadline = ContinuousClock.now + .seconds(10)
            while try await confirmed() < commit.endLSN, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(try await confirmed() >= commit.endLSN)
        }
    }

    @Test func refusesNamesThatWouldNeedQuoting() {
        #expect(throws: PostgresError.self) {
            _ = try ReplicationStream(databaseURL: "postgres://u@127.0.0.1:1/db", configuration: .init(slot: "Bad-Name"))
        }
        #expect(throws: PostgresError.self) {
            _ = try ReplicationStream(databaseURL: "postgres://u@127.0.0.1:1/db", configuration: .init(publication: "x'y"))
        }
    }

    /// The process's resident set size, from /proc.
    static func residentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes * 1024
    }
}
