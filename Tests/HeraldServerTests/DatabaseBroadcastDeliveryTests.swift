import HeraldCore
import HeraldTestSupport
import NIOCore
import Testing

/// `realtime.send` / `send_binary` in a real PostgreSQL, delivered by a real Herald to real sockets.
@Suite struct DatabaseBroadcastDeliveryTests {
    /// Herald reports running once its HTTP server listens; its LISTEN connection may need a moment more, and a
    /// NOTIFY sent before that is lost. Sends probes until one arrives.
    func waitForChangeFeed(_ herald: HeraldInstance) async throws {
        let socket = try await herald.socket()
        try await socket.joinV2("realtime:feed-ready", config: [:])
        var listening = false
        for _ in 0..<100 where !listening {
            try await herald.sql(#"SELECT realtime.send('{}', 'ready', 'feed-ready', false)"#)
            listening = (try? await socket.receive(timeout: .milliseconds(100))) != nil
        }
        await socket.close()
        guard listening else { throw HarnessError("the change feed did not start listening") }
    }

    struct UserBroadcast: Equatable {
        var topic: String
        var event: String
        var metadata: JSONObject?
        var encoding: BinaryPayloadEncoding
        var payload: [UInt8]

        var id: String { metadata?["id"]?.stringValue ?? "" }
        var text: String { String(decoding: payload, as: UTF8.self) }
    }

    /// The next frame, which must be a V2 kind-4 user broadcast.
    func nextUserBroadcast(_ socket: TestWebSocket) async throws -> UserBroadcast {
        let frame = try await socket.receive()
        guard frame.isBinary,
            case .userBroadcast(let topic, let event, let metadata, let encoding, let payload) = try BinaryFrame(decoding: ByteBuffer(bytes: frame.payload), sentBy: .server)
        else { throw HarnessError("expected a user broadcast, got \(frame)") }
        return UserBroadcast(topic: topic, event: event, metadata: metadata, encoding: encoding, payload: Array(payload.readableBytesView))
    }

    func joinV1(_ socket: TestWebSocket, _ topic: String) async throws {
        try await socket.sendText(#"{"topic":"\#(topic)","event":"phx_join","ref":"1","join_ref":"1","payload":{"config":{}}}"#)
        #expect(try await socket.receiveJSON()["payload"]?["status"] == "ok")
    }

    @Test func sendReachesV2AsKind4AndV1AsJSONWithMeta() async throws {
        try await withHerald { herald in
            try await waitForChangeFeed(herald)
            let v2 = try await herald.socket(vsn: "2.0.0")
            #expect(try await v2.joinV2("realtime:room1", config: [:]).reply.arrayValue?[4]["status"] == "ok")
            let v1 = try await herald.socket(vsn: "1.0.0")
            try await joinV1(v1, "realtime:room1")

            try await herald.sql(#"SELECT realtime.send('{"value":1}', 'event', 'room1', false)"#)
            let json = try await nextUserBroadcast(v2)
            #expect(json.topic == "realtime:room1" && json.event == "event" && json.encoding == .json)
            #expect(json.metadata?.keys == ["id"] && json.id.count == 36)
            #expect(json.text == #"{"id":"\#(json.id)","value":1}"#)
            #expect(
                try await v1.receive().text
                    == #"{"topic":"realtime:room1","event":"broadcast","payload":{"event":"event","payload":{"id":"\#(json.id)","value":1},"type":"broadcast","meta":{"id":"\#(json.id)"}},"ref":null}"#
            )

            // Binary payloads reach V2 sockets only; V1 sockets get the next JSON message.
            try await herald.sql(#"SELECT realtime.send_binary('\x00ff', 'bin', 'room1', false)"#)
            try await herald.sql(#"SELECT realtime.send('{"value":2}', 'event', 'room1', false)"#)
            let binary = try await nextUserBroadcast(v2)
            #expect(binary.encoding == .binary && binary.payload == [0x00, 0xFF] && binary.event == "bin")
            #expect(try await nextUserBroadcast(v2).text.contains(#""value":2"#))
            #expect(try await v1.receiveJSON()["payload"]?["payload"]?["value"] == 2)
            await v2.close()
            await v1.close()
        }
    }

    @Test func privateSendReachesOnlyPrivateChannels() async throws {
        try await withHerald { herald in
            try await waitForChangeFeed(herald)
            let privateSocket = try await herald.socket(token: try await herald.token(role: "service_role"))
            #expect(try await privateSocket.joinV2("realtime:room1", config: ["private": true]).reply.arrayValue?[4]["status"] == "ok")
            let publicSocket = try await herald.socket()
            #expect(try await publicSocket.joinV2("realtime:room1", config: [:]).reply.arrayValue?[4]["status"] == "ok")

            // Messages arrive in commit order, so each socket's next frame shows what it was not sent.
            try await herald.sql(#"SELECT realtime.send('{"secret":1}', 'private-event', 'room1')"#)
            try await herald.sql(#"SELECT realtime.send('{"open":1}', 'public-event', 'room1', false)"#)
            try await herald.sql(#"SELECT realtime.send('{"secret":2}', 'private-again', 'room1', true)"#)
            #expect(try await nextUserBroadcast(privateSocket).event == "private-event")
            #expect(try await nextUserBroadcast(privateSocket).event == "private-again")
            #expect(try await nextUserBroadcast(publicSocket).event == "public-event")
            await privateSocket.close()
            await publicSocket.close()
        }
    }

    @Test func payloadsOverTheSessionLimitAreDropped() async throws {
        try await withHerald { herald in
            try await waitForChangeFeed(herald)
            let socket = try await herald.socket()
            #expect(try await socket.joinV2("realtime:room1", config: [:]).reply.arrayValue?[4]["status"] == "ok")
            try await herald.sql("SELECT realtime.send(jsonb_build_object('text', repeat('x', 3000000)), 'too-big', 'room1', false)")
            try await herald.sql(#"SELECT realtime.send('{}', 'small', 'room1', false)"#)
            #expect(try await nextUserBroadcast(socket).event == "small")
            await socket.close()
        }
    }
}
