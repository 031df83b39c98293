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

    /// The trigger carries the table's columns and keys precomputed; the event trigger `herald_capture_refresh`
    /// brings them up to date after every ALTER, so the next change is right. Without that event trigger (a
    /// migration by a role that is not superuser) the trigger carries nothing and looks the table up per row.
    @Test(arguments: [true, false])
    func alteredTableSendsItsCurrentColumns(withEventTrigger: Bool) async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        if !withEventTrigger {
            _ = try await client.query("DROP EVENT TRIGGER herald_capture_refresh")
        }
        _ = try await client.query("CREATE TABLE notes (id int PRIMARY KEY, body text, gone int)")
        _ = try await client.query("SELECT realtime.enable_capture('notes')")
        let argumentCount = try await client.query(
            "SELECT tgnargs FROM pg_trigger WHERE tgrelid = 'notes'::regclass AND tgname = 'herald_capture'")[0]["tgnargs"]
        #expect(argumentCount == (withEventTrigger ? "4" : "0"))
        try await withListener(url: url, channels: ["herald_changes"]) { events in
            let prefix = #"{"schema":"public","table":"notes","type":"#
            _ = try await client.query("INSERT INTO notes VALUES (1, 'a', 7)")
            #expect(
                withoutXID(try await events.nextPayload()) == prefix
                    + #""INSERT","xid":"X","columns":[{"name":"id","type":"int4"},{"name":"body","type":"text"},{"name":"gone","type":"int4"}],"#
                    + #""record":{"id":1,"body":"a","gone":7}}"#
            )

            _ = try await client.query("ALTER TABLE notes ADD COLUMN tag varchar(10) DEFAULT 't'")
            _ = try await client.query("ALTER TABLE notes DROP COLUMN gone")
            _ = try await client.query("INSERT INTO notes VALUES (2, 'b')")
            #expect(
                withoutXID(try await events.nextPayload()) == prefix
                    + #""INSERT","xid":"X","columns":[{"name":"id","type":"int4"},{"name":"body","type":"text"},{"name":"tag","type":"varchar"}],"#
                    + #""record":{"id":2,"body":"b","tag":"t"}}"#
            )

            _ = try await client.query("ALTER TABLE notes RENAME COLUMN id TO note_id")
            _ = try await client.query("UPDATE notes SET body = 'c' WHERE note_id = 2")
            #expect(
                withoutXID(try await events.nextPayload()) == prefix
                    + #""UPDATE","xid":"X","columns":[{"name":"note_id","type":"int4"},{"name":"body","type":"text"},{"name":"tag","type":"varchar"}],"#
                    + #""record":{"note_id":2,"body":"c","tag":"t"},"old_record":{"note_id":2}}"#
            )

            // The changes right after the DDL, in the same transaction.
            try await client.withConnection { connection in
                _ = try connection.execute("BEGIN")
                _ = try connection.execute("ALTER TABLE notes ALTER COLUMN tag TYPE text")
                _ = try connection.execute("ALTER TABLE notes REPLICA IDENTITY FULL")
                _ = try connection.execute("DELETE FROM notes WHERE note_id = 1")
                _ = try connection.execute("ALTER TABLE notes DROP CONSTRAINT notes_pkey, REPLICA IDENTITY DEFAULT")
                _ = try connection.execute("DELETE FROM notes WHERE note_id = 2")
                _ = try connection.execute("COMMIT")
            }
            let columns = #"[{"name":"note_id","type":"int4"},{"name":"body","type":"text"},{"name":"tag","type":"text"}]"#
            #expect(
                withoutXID(try await events.nextPayload()) == prefix + #""DELETE","xid":"X","columns":"# + columns
                    + #","old_record":{"note_id":1,"body":"a","tag":"t"}}"#
            )
            #expect(withoutXID(try await events.nextPayload()) == prefix + #""DELETE","xid":"X","columns":"# + columns + #","old_record":{}}"#)
        }
    }

    /// Column types are sent by name: renaming a type, or a table whose row type a column has, renames them.
    @Test func renamedTypesAreSentByTheirNewNames() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.executeScript(
                """
                CREATE TYPE mood AS ENUM ('happy');
                CREATE TABLE place (x int);
                CREATE TABLE notes (id int PRIMARY KEY, m mood, p place, ps place[]);
                SELECT realtime.enable_capture('notes');
                ALTER TYPE mood RENAME TO feeling;
                ALTER TABLE place RENAME TO spot;
                """
            )
        }
        try await withListener(url: url, channels: ["herald_changes"]) { events in
            _ = try await client.query("INSERT INTO notes VALUES (1, 'happy', ROW(2), ARRAY[ROW(3)::spot])")
            #expect(
                withoutXID(try await events.nextPayload())
                    == #"{"schema":"public","table":"notes","type":"INSERT","xid":"X","columns":[{"name":"id","type":"int4"},"#
                    + #"{"name":"m","type":"feeling"},{"name":"p","type":"spot"},{"name":"ps","type":"_spot"}],"#
                    + #""record":{"id":1,"m":"happy","p":{"x":2},"ps":[{"x":3}]}}"#
            )
        }
    }

    /// Refreshing a capture trigger's arguments keeps it disabled (the replication source turns them off), and a
    /// partition, whose trigger is a clone of its parent's, sends its own columns.
    @Test func refreshKeepsDisabledTriggersAndPartitionsSendTheirOwnColumns() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        _ = try await client.query("CREATE TABLE events (id int, kind text, PRIMARY KEY (id, kind)) PARTITION BY LIST (kind)")
        _ = try await client.query("CREATE TABLE events_a (kind text NOT NULL, id int NOT NULL)")
        _ = try await client.query("ALTER TABLE events ATTACH PARTITION events_a FOR VALUES IN ('a')")
        _ = try await client.query("SELECT realtime.enable_capture('events')")

        _ = try await client.query("SELECT realtime.set_capture_triggers(false)")
        _ = try await client.query("ALTER TABLE events ADD COLUMN note text")
        let states = try await client.query(
            """
            SELECT DISTINCT tgenabled, position('"note"'::bytea in tgargs) > 0 AS current
              FROM pg_trigger WHERE tgname = 'herald_capture' AND tgrelid IN ('events'::regclass, 'events_a'::regclass)
            """
        )
        #expect(states.map { "\($0["tgenabled"] ?? "")\($0["current"] ?? "")" } == ["Dt"])
        _ = try await client.query("SELECT realtime.set_capture_triggers(true)")

        try await withListener(url: url, channels: ["herald_changes"]) { events in
            _ = try await client.query("INSERT INTO events VALUES (1, 'a', 'n')")
            #expect(
                withoutXID(try await events.nextPayload())
                    == #"{"schema":"public","table":"events_a","type":"INSERT","xid":"X","#
                    + #""columns":[{"name":"kind","type":"text"},{"name":"id","type":"int4"},{"name":"note","type":"text"}],"#
                    + #""record":{"kind":"a","id":1,"note":"n"}}"#
            )
        }
    }

    /// The trigger runs as its owner with no SET search_path: a writer with no rights on realtime.* gets its changes
    /// (parked ones too), and its search_path cannot slip its own functions or operators into the trigger.
    @Test func writersNeedNoRightsAndCannotHijackTheTrigger() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.executeScript(
                """
                CREATE TABLE notes (id int PRIMARY KEY, body text);
                SELECT realtime.enable_capture('notes');
                DO $$ BEGIN CREATE ROLE herald_hostile_writer; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
                GRANT ALL ON notes TO herald_hostile_writer;
                CREATE SCHEMA evil;
                GRANT USAGE ON SCHEMA evil TO herald_hostile_writer;
                CREATE FUNCTION evil.join(a text, b text) RETURNS text LANGUAGE plpgsql AS $e$ BEGIN RAISE 'hijacked ||'; END $e$;
                CREATE OPERATOR evil.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.join);
                CREATE FUNCTION evil.compare(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $e$ BEGIN RAISE 'hijacked ='; END $e$;
                CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.compare);
                CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.compare);
                CREATE FUNCTION evil.to_json(text) RETURNS json LANGUAGE plpgsql AS $e$ BEGIN RAISE 'hijacked to_json'; END $e$;
                CREATE FUNCTION evil.pg_notify(text, text) RETURNS void LANGUAGE plpgsql AS $e$ BEGIN RAISE 'hijacked pg_notify'; END $e$;
                GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA evil TO herald_hostile_writer;
                """
            )
        }
        try await withListener(url: url, channels: ["herald_changes"]) { events in
            try await client.withConnection { connection in
                try connection.executeScript(
                    """
                    BEGIN;
                    SET LOCAL ROLE herald_hostile_writer;
                    SET LOCAL search_path = evil, pg_catalog, public;
                    INSERT INTO public.notes VALUES (1, 'small'), (2, pg_catalog.repeat('big', 3000));
                    UPDATE public.notes SET body = 'changed' WHERE id = 1;
                    COMMIT;
                    """
                )
            }
            let prefix = #"{"schema":"public","table":"notes","type":"#
            let columns = #""xid":"X","columns":[{"name":"id","type":"int4"},{"name":"body","type":"text"}],"#
            #expect(withoutXID(try await events.nextPayload()) == prefix + #""INSERT","# + columns + #""record":{"id":1,"body":"small"}}"#)
            let big = try JSONValue.parse(try await events.nextPayload())
            #expect(big["record"]?["body"]?.stringValue == String(repeating: "big", count: 3000))
            #expect(
                withoutXID(try await events.nextPayload())
                    == prefix + #""UPDATE","# + columns + #""record":{"id":1,"body":"changed"},"old_record":{"id":1}}"#
            )
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
