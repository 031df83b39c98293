import HeraldCore
import HeraldPostgres
import HeraldTestSupport
import Testing

/// `realtime.capture_changes()` payloads, received through a real NotificationListener.
@Suite("Capture trigger")
struct CaptureTests {
    /// The payload with its transaction id replaced by `X`, so it can be compared as text.
    func withoutXID(_ payload: String) -> String {
        payload.replacing(/"xid":"[0-9]+"/, with: "\"xid\":\"X\"")
    }

    @Test func insertUpdateDeleteWithDefaultIdentity() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        _ = try await client.query("CREATE TABLE items (id int PRIMARY KEY, name text, tags int[], dropped text)")
        _ = try await client.query("ALTER TABLE items DROP COLUMN dropped")
        try await withListener(url: url) { events in
            _ = try await client.query("SELECT realtime.enable_capture('items')")
            #expect(try await events.nextPayload(on: "herald_catalog") == "public.items")

            let columns = #"[{"name":"id","type":"int4"},{"name":"name","type":"text"},{"name":"tags","type":"_int4"}]"#
            _ = try await client.query("INSERT INTO items VALUES (1, 'a \"quoted\" name', '{1,2}')")
            #expect(
                withoutXID(try await events.nextPayload())
                    == #"{"schema":"public","table":"items","type":"INSERT","xid":"X","columns":"# + columns
                    + #","record":{"id":1,"name":"a \"quoted\" name","tags":[1,2]}}"#
            )
            _ = try await client.query("UPDATE items SET name = 'b' WHERE id = 1")
            #expect(
                withoutXID(try await events.nextPayload())
                    == #"{"schema":"public","table":"items","type":"UPDATE","xid":"X","columns":"# + columns
                    + #","record":{"id":1,"name":"b","tags":[1,2]},"old_record":{"id":1}}"#
            )
            _ = try await client.query("DELETE FROM items")
            #expect(
                withoutXID(try await events.nextPayload())
                    == #"{"schema":"public","table":"items","type":"DELETE","xid":"X","columns":"# + columns + #","old_record":{"id":1}}"#
            )
        }
    }

    @Test func replicaIdentityFullIndexAndNothing() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        _ = try await client.query("CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL UNIQUE, name text)")
        _ = try await client.query("SELECT realtime.enable_capture('people')")
        try await withListener(url: url) { events in
            _ = try await client.query("INSERT INTO people VALUES (1, 'a@example.com', 'Ann')")
            _ = try await events.nextPayload()

            _ = try await client.query("ALTER TABLE people REPLICA IDENTITY FULL")
            _ = try await client.query("UPDATE people SET name = 'Anne'")
            #expect(try await oldRecord(events) == #"{"id":1,"email":"a@example.com","name":"Ann"}"#)

            _ = try await client.query("ALTER TABLE people REPLICA IDENTITY USING INDEX people_email_key")
            _ = try await client.query("UPDATE people SET name = 'Annie'")
            #expect(try await oldRecord(events) == #"{"email":"a@example.com"}"#)

            _ = try await client.query("ALTER TABLE people REPLICA IDENTITY NOTHING")
            _ = try await client.query("DELETE FROM people")
            #expect(try await oldRecord(events) == "{}")
        }
    }

    /// The `old_record` member of the next change, as text.
    func oldRecord(_ events: EventRecorder) async throws -> String? {
        let payload = try await events.nextPayload()
        return try JSONValue.parse(payload)["old_record"].map { JSONValue.object($0.objectValue ?? [:]).jsonString }
    }

    @Test func bigRowArrivesWholeAndInOrder() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        let room = "00000000-0000-0000-0000-000000000001"
        let big = String(repeating: "x", count: 1 << 20)
        try await withListener(url: url) { events in
            for content in ["before", big, "after"] {
                _ = try await client.query("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, $2)", [room, content])
            }
            for expected in ["before", big, "after"] {
                let change = try JSONValue.parse(try await events.nextPayload())
                #expect(change["type"]?.stringValue == "INSERT")
                #expect(change["table"]?.stringValue == "messages")
                #expect(change["record"]?["content"]?.stringValue == expected)
            }
        }
        #expect(try await client.query("SELECT count(*) AS n FROM realtime.change_payloads")[0]["n"] == "0")
    }

    @Test func rolledBackChangesLeaveNothing() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        let room = "00000000-0000-0000-0000-000000000002"
        try await withListener(url: url) { events in
            try await client.withConnection { connection in
                _ = try connection.execute("BEGIN")
                _ = try connection.execute("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, repeat('y', 20000))", params: [room])
                _ = try connection.execute("ROLLBACK")
            }
            _ = try await client.query("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'kept')", [room])
            let change = try JSONValue.parse(try await events.nextPayload())
            #expect(change["record"]?["content"]?.stringValue == "kept")
        }
        #expect(try await client.query("SELECT count(*) AS n FROM realtime.change_payloads")[0]["n"] == "0")
    }

    @Test func capturedTablesDescribeTheChatSchema() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        let rows = try await client.query("SELECT schema_name, table_name, columns::text AS columns, primary_key::text AS primary_key FROM realtime.captured_tables()")
        #expect(rows.map { "\($0["schema_name"] ?? "").\($0["table_name"] ?? "")" } == ["public.message_receipts", "public.messages"])
        #expect(rows[0]["primary_key"] == "{message_id,user_id}")
        #expect(rows[1]["primary_key"] == "{id}")
        let columns = try JSONValue.parse(rows[1]["columns"] ?? "").arrayValue ?? []
        #expect(columns.compactMap { $0["name"]?.stringValue } == ["id", "room_id", "sender_id", "content", "created_at", "edited_at", "deleted_at"])
        #expect(columns.compactMap { $0["type"]?.stringValue } == ["uuid", "uuid", "uuid", "text", "timestamptz", "timestamptz", "timestamptz"])
    }

    @Test func disableCaptureStopsNotifications() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        let room = "00000000-0000-0000-0000-000000000003"
        try await withListener(url: url) { events in
            _ = try await client.query("SELECT realtime.disable_capture('messages')")
            #expect(try await events.nextPayload(on: "herald_catalog") == "public.messages")
            _ = try await client.query("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'silent')", [room])
            _ = try await client.query("SELECT realtime.enable_capture('messages')")
            _ = try await client.query("SELECT realtime.enable_capture('messages')")
            #expect(try await events.nextPayload(on: "herald_catalog") == "public.messages")
            #expect(try await events.nextPayload(on: "herald_catalog") == "public.messages")
            _ = try await client.query("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'heard')", [room])
            #expect(try JSONValue.parse(try await events.nextPayload())["record"]?["content"]?.stringValue == "heard")
        }
        #expect(try await client.query("SELECT count(*) AS n FROM pg_trigger WHERE tgname = 'herald_capture'")[0]["n"] == "2")
    }
}
