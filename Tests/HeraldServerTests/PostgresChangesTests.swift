import Foundation
import HeraldCore
import HeraldPostgres
import HeraldTestSupport
import Testing

/// Row changes from a real PostgreSQL to real sockets, frame by frame.
@Suite struct PostgresChangesTests {
    static let room = "11111111-1111-1111-1111-111111111111"
    static let otherRoom = "22222222-2222-2222-2222-222222222222"
    static let sender = "33333333-3333-3333-3333-333333333333"

    func insertMessage(_ herald: HeraldInstance, room: String, content: String) async throws -> String {
        let rows = try await herald.sql(
            "INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $2, $3) RETURNING id",
            [room, Self.sender, content]
        )
        return rows.values[0][0]!
    }

    @Test func filteredInsertUpdateDeleteInV2() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket(vsn: "2.0.0")
            let binding: JSONValue = ["event": "*", "schema": "public", "table": "messages", "filter": .string("room_id=eq.\(Self.room)")]
            let (reply, system) = try await socket.joinV2("realtime:chat", config: ["postgres_changes": [binding]])
            let echoed = reply.arrayValue?[4]["response"]?["postgres_changes"]?.arrayValue?.first
            #expect(echoed?.objectValue?.keys == ["event", "schema", "table", "filter", "id"])
            let id = echoed?["id"]?.intValue
            #expect(id != nil)
            #expect(
                system?.jsonString
                    == #"["1",null,"realtime:chat","system",{"extension":"postgres_changes","status":"ok","message":"Subscribed to PostgreSQL","channel":"chat"}]"#
            )

            _ = try await insertMessage(herald, room: Self.otherRoom, content: "not for us")
            let messageID = try await insertMessage(herald, room: Self.room, content: "hello")
            let insert = try await socket.receiveJSON()
            #expect(insert.arrayValue?[0] == .null && insert.arrayValue?[1] == .null)
            #expect(insert.arrayValue?[3] == "postgres_changes")
            let payload = insert.arrayValue?[4]
            #expect(payload?["ids"] == .array([.int(id ?? -1)]))
            let data = payload?["data"]
            #expect(data?.objectValue?.keys == ["schema", "table", "type", "commit_timestamp", "columns", "record", "errors", "position"])
            #expect(data?["type"] == "INSERT" && data?["errors"] == .null)
            #expect(data?["record"]?["content"] == "hello")
            #expect(data?["record"]?["id"] == .string(messageID))
            #expect(data?["record"]?["edited_at"] == .null)
            let columns = data?["columns"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
            #expect(columns == ["id", "room_id", "sender_id", "content", "created_at", "edited_at", "deleted_at"])
            #expect(data?["columns"]?.arrayValue?.first?["type"] == "uuid")
            let timestamp = data?["commit_timestamp"]?.stringValue ?? ""
            #expect(timestamp.count == 24 && timestamp.hasSuffix("Z"))

            try await herald.sql("UPDATE messages SET content = 'edited', edited_at = now() WHERE id = $1", [messageID])
            let update = try await socket.receiveJSON().arrayValue?[4]["data"]
            #expect(update?["type"] == "UPDATE")
            #expect(update?["record"]?["content"] == "edited")
            #expect(update?["old_record"] == ["id": .string(messageID)])

            // With the default replica identity the old row holds the key only, so a room filter cannot match a
            // DELETE (as upstream); with REPLICA IDENTITY FULL it does.
            try await herald.sql("DELETE FROM messages WHERE id = $1", [messageID])
            try await herald.sql("ALTER TABLE messages REPLICA IDENTITY FULL")
            let second = try await insertMessage(herald, room: Self.room, content: "second")
            #expect(try await socket.receiveJSON().arrayValue?[4]["data"]?["type"] == "INSERT")
            try await herald.sql("DELETE FROM messages WHERE id = $1", [second])
            let delete = try await socket.receiveJSON().arrayValue?[4]["data"]
            #expect(delete?["type"] == "DELETE")
            #expect(delete?.objectValue?.contains("record") == false)
            #expect(delete?["old_record"]?["content"] == "second")
            await socket.close()
        }
    }

    @Test func v1FramesAndSeveralBindingsShareOneEvent() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket(vsn: "1.0.0")
            let join = #"{"topic":"realtime:any","event":"phx_join","ref":"1","join_ref":"1","payload":{"config":{"postgres_changes":[{"event":"INSERT","schema":"public","table":"messages"},{"event":"*","schema":"public"}]}}}"#
            try await socket.sendText(join)
            let reply = try await socket.receiveJSON()
            #expect(reply.objectValue?.keys == ["topic", "event", "payload", "ref"])
            let ids = reply["payload"]?["response"]?["postgres_changes"]?.arrayValue?.compactMap { $0["id"]?.intValue } ?? []
            #expect(ids.count == 2)
            #expect(try await socket.receiveJSON()["payload"]?["message"] == "Subscribed to PostgreSQL")
            _ = try await insertMessage(herald, room: Self.room, content: "both")
            let event = try await socket.receiveJSON()
            #expect(event["event"] == "postgres_changes" && event["ref"] == .null)
            #expect(event["payload"]?["ids"] == .array(ids.map { JSONValue.int($0) }))
            await socket.close()
        }
    }

    @Test func subscriptionErrorsUseUpstreamMessages() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            func systemMessage(_ binding: JSONValue, ref: String) async throws -> JSONValue? {
                let (reply, system) = try await socket.joinV2("realtime:e\(ref)", config: ["postgres_changes": [binding]], ref: ref)
                #expect(reply.arrayValue?[4]["status"] == "ok")
                return system?.arrayValue?[4]
            }
            let unknownTable = try await systemMessage(["event": "*", "schema": "public", "table": "doesnotexist"], ref: "1")
            #expect(unknownTable?["status"] == "error")
            #expect(
                unknownTable?["message"]
                    == "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [event: *, schema: public, table: doesnotexist, filters: [], select: nil]"
            )
            let badFilter = try await systemMessage(["event": "*", "schema": "public", "table": "messages", "filter": "wrong"], ref: "2")
            #expect(badFilter?["message"] == #"Error parsing `filter` params: ["wrong"]"#)
            let badColumn = try await systemMessage(["event": "*", "schema": "public", "table": "messages", "filter": "notacolumn=eq.123"], ref: "3")
            #expect(badColumn?["message"]?.stringValue?.hasSuffix("invalid column for filter notacolumn") == true)
            await socket.close()
        }
    }

    @Test func aOneMebibyteRowArrivesWholeAndInOrder() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            try await socket.joinV2("realtime:big", config: ["postgres_changes": [["event": "INSERT", "schema": "public", "table": "messages"]]])
            let big = String(repeating: "0123456789abcdef", count: 65_536)
            _ = try await insertMessage(herald, room: Self.room, content: "before")
            _ = try await insertMessage(herald, room: Self.room, content: big)
            _ = try await insertMessage(herald, room: Self.room, content: "after")
            var contents: [String] = []
            for _ in 0..<3 {
                contents.append(try await socket.receiveJSON().arrayValue?[4]["data"]?["record"]?["content"]?.stringValue ?? "")
            }
            #expect(contents.map(\.count) == [6, big.count, 5])
            #expect(contents[1] == big)
            await socket.close()
        }
    }

    @Test func aKilledListenerIsReplacedAndChannelsAreTold() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            try await socket.joinV2("realtime:gap", config: ["postgres_changes": [["event": "INSERT", "schema": "public", "table": "messages"]]])
            try await herald.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'herald-listener' AND datname = current_database()")
            let notice = try await socket.receiveJSON(timeout: .seconds(20)).arrayValue?[4]
            #expect(notice?["extension"] == "postgres_changes" && notice?["status"] == "error")
            #expect(notice?["message"]?.stringValue?.contains("missed") == true)
            _ = try await insertMessage(herald, room: Self.room, content: "after the outage")
            #expect(try await socket.receiveJSON().arrayValue?[4]["data"]?["record"]?["content"] == "after the outage")
            await socket.close()
        }
    }

    @Test func typedValuesAndByteaAsUpstreamSendsThem() async throws {
        try await withHerald { herald in
            try await herald.script(
                """
                CREATE TABLE public.kinds (id int8 PRIMARY KEY, n numeric, f float8, b bool, j jsonb, a int4[], raw bytea, t timestamp, d date);
                SELECT realtime.enable_capture('public.kinds');
                """
            )
            let socket = try await herald.socket()
            try await socket.joinV2("realtime:kinds", config: ["postgres_changes": [["event": "INSERT", "schema": "public", "table": "kinds", "filter": "n=gt.1.5"]]])
            try await herald.sql("INSERT INTO kinds VALUES (1, 1.25, 0.5, true, '{}', '{}', '\\x00', now(), now())")
            try await herald.sql(
                "INSERT INTO kinds VALUES (2, 123456789012345678901234567890.12, 2.5, false, '{\"a\":[1,2]}', '{1,2}', '\\x0102030405', '2026-01-01 10:00:00', '2026-01-02')"
            )
            let record = try await socket.receiveJSON().arrayValue?[4]["data"]?["record"]
            #expect(record?["id"] == .number("2"))
            #expect(record?["n"] == .number("123456789012345678901234567890.12"))
            #expect(record?["f"] == .number("2.5") && record?["b"] == false)
            #expect(record?["j"] == ["a": [1, 2]] && record?["a"] == [1, 2])
            #expect(record?["raw"] == "0102030405")
            #expect(record?["t"] == "2026-01-01T10:00:00" && record?["d"] == "2026-01-02")
            await socket.close()
        }
    }
}
