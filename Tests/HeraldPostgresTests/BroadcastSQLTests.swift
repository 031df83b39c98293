import Foundation
import HeraldCore
import HeraldPostgres
import HeraldTestSupport
import Testing

/// `realtime.send`, `send_binary`, `broadcast_changes`, `topic()` and the retention sweep
/// (sql/realtime/broadcast.sql), with notifications received through a real NotificationListener.
@Suite("Broadcast from the database")
struct BroadcastSQLTests {
    /// The next notification, which must be a database broadcast.
    func nextBroadcast(_ events: EventRecorder) async throws -> DatabaseBroadcast {
        let notification = try ChangeNotification(json: Array(try await events.nextPayload().utf8))
        guard case .broadcast(let broadcast) = notification else {
            throw EventRecorder.Timeout(description: "expected a database broadcast, got \(notification)")
        }
        return broadcast
    }

    @Test func sendInsertsARowAndNotifies() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        try await withListener(url: url) { events in
            _ = try await client.query(#"SELECT realtime.send('{"value":1}', 'event', 'room1', false)"#)
            let broadcast = try await nextBroadcast(events)
            #expect(broadcast.topic == "room1" && broadcast.event == "event" && !broadcast.isPrivate)
            #expect(broadcast.encoding == .json)
            #expect(String(decoding: broadcast.payload, as: UTF8.self) == #"{"id":"\#(broadcast.id)","value":1}"#)

            let rows = try await client.query("SELECT id::text, topic, extension, event, private::text, payload::text, binary_payload FROM realtime.messages")
            #expect(rows.count == 1)
            #expect(rows[0]["id"] == broadcast.id && rows[0]["topic"] == "room1" && rows[0]["extension"] == "broadcast")
            #expect(rows[0]["event"] == "event" && rows[0]["private"] == "false" && rows[0]["binary_payload"] == nil)
            #expect(rows[0]["payload"] == #"{"id": "\#(broadcast.id)", "value": 1}"#)

            // A payload with its own id keeps it; private is the default.
            _ = try await client.query(#"SELECT realtime.send('{"id":"mine"}', 'event', 'room1')"#)
            let own = try await nextBroadcast(events)
            #expect(own.isPrivate && String(decoding: own.payload, as: UTF8.self) == #"{"id":"mine"}"#)
            #expect(own.id != "mine")
        }
    }

    @Test func sendNeverAbortsTheCallersTransaction() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        let output = try psql(
            url,
            """
            BEGIN;
            CREATE TABLE kept (id int);
            SELECT realtime.send('{}', 'event', NULL);
            SELECT realtime.send('1', 'event', 'room1');
            INSERT INTO kept VALUES (1);
            COMMIT;
            """
        )
        #expect(output.status == 0)
        let warnings = output.stderr.split(separator: "\n").filter { $0.contains("WARNING") }
        #expect(warnings.count == 2)
        #expect(warnings.allSatisfy { $0.contains("WARNING:  WarnSendingBroadcastMessage: ") })
        #expect(warnings.last?.hasSuffix("cannot set path in scalar") == true)
        #expect(try await client.query("SELECT count(*) AS n FROM kept")[0]["n"] == "1")
        #expect(try await client.query("SELECT count(*) AS n FROM realtime.messages")[0]["n"] == "0")
    }

    @Test func broadcastChangesFromARowTrigger() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        try await client.withConnection { connection in
            try connection.executeScript(
                """
                CREATE TABLE notes (id int PRIMARY KEY, body text);
                CREATE FUNCTION notes_broadcast() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    PERFORM realtime.broadcast_changes('notes:' || coalesce(NEW.id, OLD.id), TG_OP, TG_OP, TG_TABLE_NAME, TG_TABLE_SCHEMA, NEW, OLD, TG_LEVEL);
                    RETURN NULL;
                END
                $$;
                CREATE TRIGGER notes_broadcast AFTER INSERT OR UPDATE OR DELETE ON notes FOR EACH ROW EXECUTE FUNCTION notes_broadcast();
                """
            )
        }
        try await withListener(url: url) { events in
            _ = try await client.query("INSERT INTO notes VALUES (1, 'a')")
            let insert = try await nextBroadcast(events)
            #expect(insert.topic == "notes:1" && insert.event == "INSERT" && insert.isPrivate)
            #expect(
                String(decoding: insert.payload, as: UTF8.self)
                    == #"{"id":"\#(insert.id)","table":"notes","record":{"id":1,"body":"a"},"schema":"public","operation":"INSERT","old_record":null}"#
            )
            _ = try await client.query("UPDATE notes SET body = 'b'")
            let update = try JSONValue.parse(try await nextBroadcast(events).payload)
            #expect(update["record"]?["body"] == "b" && update["old_record"]?["body"] == "a" && update["operation"] == "UPDATE")
            _ = try await client.query("DELETE FROM notes")
            let delete = try JSONValue.parse(try await nextBroadcast(events).payload)
            #expect(delete["record"] == .null && delete["old_record"]?["id"] == 1)
        }
        _ = try await client.query("CREATE TRIGGER notes_statement AFTER INSERT ON notes FOR EACH STATEMENT EXECUTE FUNCTION notes_broadcast()")
        await #expect {
            _ = try await client.query("INSERT INTO notes VALUES (2, 'c')")
        } throws: { error in
            "\(error)".contains("Failed to process the row: function can only be triggered for each row, not for each statement")
        }
    }

    @Test func topicIsSetForTheRestOfTheTransaction() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        #expect(try await client.query("SELECT realtime.topic() AS topic")[0]["topic"] == nil)
        let topics = try await client.withConnection { connection in
            _ = try connection.execute("BEGIN")
            _ = try connection.execute(#"SELECT realtime.send('{}', 'event', 'room:42')"#)
            let inside = try connection.execute("SELECT realtime.topic() AS topic")[0]["topic"]
            _ = try connection.execute("COMMIT")
            let after = try connection.execute("SELECT realtime.topic() AS topic")[0]["topic"]
            return [inside, after]
        }
        #expect(topics == ["room:42", nil])
    }

    @Test func sendBinary() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        try await withListener(url: url) { events in
            // 0xFB 0xFF use the two characters in which base64 and base64url differ.
            _ = try await client.query(#"SELECT realtime.send_binary('\xfbff000102', 'bin', 'room1')"#)
            let broadcast = try await nextBroadcast(events)
            #expect(broadcast.encoding == .binary && broadcast.payload == [0xFB, 0xFF, 0x00, 0x01, 0x02])
            #expect(broadcast.isPrivate && broadcast.event == "bin" && broadcast.topic == "room1")
            let rows = try await client.query("SELECT id::text, binary_payload, payload FROM realtime.messages")
            #expect(rows[0]["id"] == broadcast.id && rows[0]["binary_payload"] == #"\xfbff000102"# && rows[0]["payload"] == nil)
        }
    }

    @Test func bigPayloadsAreParkedAndOtherExtensionsAreNotDelivered() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let client = PostgresClient(databaseURL: url)
        defer { client.close() }
        let big = String(repeating: "x", count: 100_000)
        try await withListener(url: url) { events in
            _ = try await client.query("INSERT INTO realtime.messages (topic, extension, payload, event) VALUES ('room1', 'presence', '{}', 'probe')")
            _ = try await client.query("SELECT realtime.send(jsonb_build_object('text', $1::text), 'big', 'room1', false)", [big])
            let broadcast = try await nextBroadcast(events)
            #expect(broadcast.event == "big")
            #expect(try JSONValue.parse(broadcast.payload)["text"]?.stringValue == big)
        }
        #expect(try await client.query("SELECT count(*) AS n FROM realtime.change_payloads")[0]["n"] == "0")
    }

    @Test func deleteOldMessagesKeepsTheRetention() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        _ = try await client.query(
            """
            INSERT INTO realtime.messages (topic, extension, payload, event, inserted_at)
            VALUES ('old', 'broadcast', '{}', 'e', localtimestamp - interval '73 hours'),
                   ('new', 'broadcast', '{}', 'e', localtimestamp - interval '71 hours')
            """
        )
        #expect(try await client.query("SELECT realtime.delete_old_messages(interval '72 hours') AS n")[0]["n"] == "1")
        #expect(try await client.query("SELECT topic FROM realtime.messages").map { $0["topic"] } == ["new"])
    }

    @Test func messagesHaveRowLevelSecurityAndOnePayloadKind() async throws {
        let client = PostgresClient(databaseURL: try await TestPostgres.shared.makeMigratedDatabase())
        defer { client.close() }
        let rls = try await client.query("SELECT relrowsecurity::text AS rls FROM pg_class WHERE oid = 'realtime.messages'::regclass")
        #expect(rls[0]["rls"] == "true")
        await #expect(throws: PostgresError.self) {
            _ = try await client.query(#"INSERT INTO realtime.messages (topic, extension, payload, binary_payload) VALUES ('t', 'broadcast', '{}', '\x01')"#)
        }
    }

    struct ProcessOutput {
        var status: Int32
        var stderr: String
    }

    /// Runs `script` through psql, which shows the warnings that libpq connections here discard.
    func psql(_ url: String, _ script: String) throws -> ProcessOutput {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", url]
        let input = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(script.utf8))
        try input.fileHandleForWriting.close()
        let stderr = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessOutput(status: process.terminationStatus, stderr: String(decoding: stderr, as: UTF8.self))
    }
}
