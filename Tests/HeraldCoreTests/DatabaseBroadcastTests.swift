import HeraldCore
import Testing

/// `realtime.capture_broadcast()` notifications (sql/realtime/broadcast.sql) and how they become hub broadcasts.
@Suite struct DatabaseBroadcastTests {
    static let id = "0b8a1c52-3d6e-4f7a-9b0c-1d2e3f405162"

    func decode(_ json: String) throws(FrameDecodingError) -> ChangeNotification {
        try ChangeNotification(json: Array(json.utf8))
    }

    @Test func jsonBroadcastBecomesAUserBroadcastWithItsID() throws {
        // As jsonb prints it: spaces after separators, keys by length.
        let json = #"{"broadcast": {"id": "\#(Self.id)", "event": "event", "topic": "room1", "payload": {"id": "\#(Self.id)", "value": 1.50}, "private": false, "binary_payload": null}}"#
        let expected = DatabaseBroadcast(
            id: Self.id,
            topic: "room1",
            event: "event",
            isPrivate: false,
            encoding: .json,
            payload: Array(#"{"id":"\#(Self.id)","value":1.50}"#.utf8)
        )
        #expect(try decode(json) == .broadcast(expected))
        #expect(
            expected.message
                == BroadcastMessage(
                    topic: TopicKey(subTopic: "room1", isPrivate: false),
                    sender: nil,
                    includeSender: true,
                    content: .user(event: "event", encoding: .json, payload: expected.payload, metadata: ["id": .string(Self.id)])
                )
        )
    }

    @Test func binaryBroadcastIsUnpaddedBase64URL() throws {
        // PostgreSQL's base64 of 0xFB 0xFF 0x00 0x01 is "+/8AAQ==", which the trigger writes as "-_8AAQ".
        let json = #"{"broadcast": {"id": "\#(Self.id)", "event": "bin", "topic": "room1", "payload": null, "private": true, "binary_payload": "-_8AAQ"}}"#
        guard case .broadcast(let broadcast) = try decode(json) else {
            Issue.record("not a broadcast")
            return
        }
        #expect(broadcast.encoding == .binary && broadcast.payload == [0xFB, 0xFF, 0x00, 0x01])
        #expect(broadcast.message.topic == TopicKey(subTopic: "room1", isPrivate: true))
        let empty = #"{"broadcast": {"id": "\#(Self.id)", "event": "bin", "topic": "t", "payload": null, "private": true, "binary_payload": ""}}"#
        guard case .broadcast(let emptyBroadcast) = try decode(empty) else {
            Issue.record("not a broadcast")
            return
        }
        #expect(emptyBroadcast.encoding == .binary && emptyBroadcast.payload.isEmpty)
    }

    @Test func rowChangesStillDecode() throws {
        let json = #"{"schema":"public","table":"t","type":"INSERT","xid":"5","columns":[{"name":"id","type":"int4"}],"record":{"id":1}}"#
        guard case .change(let change) = try decode(json) else {
            Issue.record("not a change")
            return
        }
        #expect(change.table == "t" && change.record == ["id": 1])
    }

    @Test(arguments: [
        #"{"broadcast": {"event": "e", "topic": "t", "payload": {}, "private": false}}"#,  // no id
        #"{"broadcast": {"id": "x", "event": "e", "payload": {}, "private": false}}"#,  // no topic
        #"{"broadcast": {"id": "x", "event": null, "topic": "t", "payload": {}, "private": false}}"#,  // no event
        #"{"broadcast": {"id": "x", "event": "e", "topic": "t", "payload": {}, "private": null}}"#,  // no private flag
        #"{"broadcast": {"id": "x", "event": "e", "topic": "t", "payload": null, "private": false, "binary_payload": null}}"#,  // no payload
        #"{"broadcast": {"id": "x", "event": "e", "topic": "t", "private": false, "binary_payload": "a+b"}}"#,  // not base64url
        #"{"broadcast": "x"}"#,
        "garbage",
    ])
    func undeliverableNotificationsAreErrors(json: String) {
        #expect(throws: FrameDecodingError.self) { try decode(json) }
    }
}
