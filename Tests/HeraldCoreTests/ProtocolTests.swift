import HeraldCore
import NIOCore
import Testing

@Suite struct ProtocolTests {
    @Test(arguments: [
        (nil, SerializerVersion.v1), ("1.0.0", .v1), ("1.0.5", .v1), ("2.0.0", .v2), ("2.0.3", .v2),
    ] as [(String?, SerializerVersion)])
    func negotiatesVersions(_ vsn: String?, _ expected: SerializerVersion) {
        #expect(SerializerVersion(vsn: vsn) == expected)
    }

    @Test(arguments: ["3.0.0", "1.1.0", "2", "abc", "", "1.0", "1.0.0.0", "-1.0.0"])
    func refusesUnknownVersions(_ vsn: String) {
        #expect(SerializerVersion(vsn: vsn) == nil)
    }

    @Test func decodesV1Objects() throws {
        let message = try PhoenixMessage.decode(
            text: Array(#"{"topic":"realtime:a","event":"phx_join","payload":{"x":1},"ref":"1","join_ref":"1"}"#.utf8),
            version: .v1
        )
        #expect(message == PhoenixMessage(joinRef: "1", ref: "1", topic: "realtime:a", event: "phx_join", payload: ["x": 1]))
        // Python sends null refs; numbers are tolerated.
        let heartbeat = try PhoenixMessage.decode(text: Array(#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":null}"#.utf8), version: .v1)
        #expect(heartbeat.ref == nil && heartbeat.joinRef == nil)
        let numbered = try PhoenixMessage.decode(text: Array(#"{"topic":"t","event":"e","payload":{},"ref":7}"#.utf8), version: .v1)
        #expect(numbered.ref == "7")
    }

    @Test(arguments: [
        #"[1,2,3]"#, #"{"event":"e","payload":{},"ref":null}"#, #"{"topic":"t","payload":{},"ref":null}"#,
        #"{"topic":"t","event":"e","ref":null}"#, #"{"topic":"t","event":"e","payload":{}}"#, #"{"topic":1,"event":"e","payload":{},"ref":null}"#,
        #"{"topic":"t","event":"e","payload":{},"ref":{}}"#, "not json",
    ])
    func rejectsMalformedV1(_ text: String) {
        #expect(throws: FrameDecodingError.self) { try PhoenixMessage.decode(text: Array(text.utf8), version: .v1) }
    }

    @Test func decodesV2Arrays() throws {
        let message = try PhoenixMessage.decode(text: Array(#"["1","2","realtime:a","broadcast",{"a":1},"extra"]"#.utf8), version: .v2)
        #expect(message == PhoenixMessage(joinRef: "1", ref: "2", topic: "realtime:a", event: "broadcast", payload: ["a": 1]))
        #expect(throws: FrameDecodingError.self) { try PhoenixMessage.decode(text: Array(#"["1","2","t","e"]"#.utf8), version: .v2) }
        #expect(throws: FrameDecodingError.self) { try PhoenixMessage.decode(text: Array(#"{"topic":"t"}"#.utf8), version: .v2) }
    }

    @Test func encodesBothVersions() {
        let reply = PhoenixMessage.reply(to: "3", joinRef: "1", topic: "realtime:a", status: "ok", response: [:])
        #expect(String(buffer: reply.encode(.v1)) == #"{"topic":"realtime:a","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":"3"}"#)
        #expect(String(buffer: reply.encode(.v2)) == #"["1","3","realtime:a","phx_reply",{"status":"ok","response":{}}]"#)
        let push = PhoenixFrame.encode(.v2, joinRef: nil, ref: nil, topic: "realtime:a", event: "postgres_changes", payload: Array("{}".utf8))
        #expect(String(buffer: push) == #"[null,null,"realtime:a","postgres_changes",{}]"#)
    }

    @Test func joinConfigReadsFlexibleBooleansAndDefaults() throws {
        let payload = try JSONValue.parse(
            #"{"config":{"broadcast":{"self":"TRUE","ack":true},"presence":{"key":"","enabled":"maybe"},"private":false,"postgres_changes":[null,{"event":"INSERT","schema":"public","table":"t"}]},"access_token":"tok"}"#
        )
        let config = JoinConfig(payload: payload)
        #expect(config.broadcastSelf && config.broadcastAck)
        #expect(!config.presenceEnabled && config.presenceKey == nil && !config.isPrivate)
        #expect(config.postgresChanges.count == 1)
        #expect(config.accessToken == "tok")
        #expect(JoinConfig(payload: ["access_token": "sb_publishable_x"]).accessToken == nil)
        #expect(JoinConfig(payload: ["access_token": "sb_x", "user_token": "u"]).accessToken == nil)
        #expect(JoinConfig(payload: ["access_token": "a", "user_token": "u"]).accessToken == "u")
    }

    @Test func bindingIDsAreStableAndEchoKeepsTheRawObject() throws {
        let a = try JSONValue.parse(#"{"event":"INSERT","schema":"public","table":"t","filter":"id=eq.1"}"#).objectValue!
        let b = try JSONValue.parse(#"{"filter":"id=eq.1","table":"t","schema":"public","event":"INSERT"}"#).objectValue!
        let first = BindingRequest(raw: a)
        #expect(first.id == BindingRequest(raw: b).id)
        #expect(first.id >= 0 && first.id < 1 << 27)
        #expect(first.id != BindingRequest(raw: ["event": "INSERT", "schema": "public", "table": "u"]).id)
        #expect(first.echo.objectValue?.keys == ["event", "schema", "table", "filter", "id"])
        #expect(first.shape == .valid(event: .insert, schema: "public", table: "t", filter: "id=eq.1"))
    }

    @Test func bindingShapes() {
        #expect(BindingRequest(raw: ["event": "*", "schema": "public"]).shape == .valid(event: nil, schema: "public", table: "*", filter: nil))
        #expect(BindingRequest(raw: ["event": "delete", "table": "t"]).shape == .valid(event: .delete, schema: "public", table: "t", filter: nil))
        #expect(BindingRequest(raw: ["event": "bogus", "schema": "s", "table": "t"]).shape == .valid(event: nil, schema: "s", table: "t", filter: nil))
        #expect(
            BindingRequest(raw: ["event": "*", "schema": "public", "table": "t", "filter": nil]).shape
                == .invalid(
                    message: #"No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: %{"event" => "*", "filter" => nil, "schema" => "public", "table" => "t"}"#
                )
        )
    }

    @Test func commitTimestampFormat() {
        #expect(Timestamp.iso8601Milliseconds(microseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp.iso8601Milliseconds(microseconds: 1_787_307_330_123_456) == "2026-08-21T10:15:30.123Z")
        #expect(Timestamp.iso8601Milliseconds(microseconds: 951_782_400_000_999) == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp.iso8601Milliseconds(microseconds: -1000) == "1969-12-31T23:59:59.999Z")
    }

    @Test func changeEventShapes() {
        let columns = [Column(name: "id", type: "int4"), Column(name: "b", type: "bytea")]
        let insert = Change(schema: "public", table: "t", type: .insert, commitTimestamp: 0, columns: columns, record: ["id": 1], oldRecord: nil)
        #expect(
            JSONValue.object(ChangeEvent.data(insert)).jsonString
                == #"{"schema":"public","table":"t","type":"INSERT","commit_timestamp":"1970-01-01T00:00:00.000Z","columns":[{"name":"id","type":"int4"},{"name":"b","type":"bytea"}],"record":{"id":1},"errors":null}"#
        )
        let delete = Change(schema: "public", table: "t", type: .delete, commitTimestamp: 0, columns: columns, record: nil, oldRecord: ["id": 1])
        let deleteKeys = ChangeEvent.data(delete).keys
        #expect(deleteKeys.contains("old_record") && !deleteKeys.contains("record"))
        var update = delete
        update.type = .update
        update.record = ["id": 1]
        #expect(ChangeEvent.data(update).keys.contains("record") && ChangeEvent.data(update).keys.contains("old_record"))
        #expect(String(decoding: ChangeEvent.payload(ids: [1, 2], data: Array("{}".utf8)), as: UTF8.self) == #"{"ids":[1,2],"data":{}}"#)
    }

    @Test func triggerPayloadDecodes() throws {
        let json = #"{"schema":"public","table":"t","type":"UPDATE","xid":"77","columns":[{"name":"id","type":"int4"},{"name":"b","type":"bytea"}],"record":{"id":1,"b":"\\x0102"},"old_record":{"id":1}}"#
        let payload = try TriggerPayload(json: Array(json.utf8))
        #expect(payload.transactionID == "77" && payload.type == .update)
        #expect(payload.record?["b"] == "0102")
        #expect(payload.oldRecord == ["id": 1])
        #expect(throws: FrameDecodingError.self) { try TriggerPayload(json: Array(#"{"schema":"s"}"#.utf8)) }
        #expect(throws: FrameDecodingError.self) { try TriggerPayload(json: Array("garbage".utf8)) }
    }
}
