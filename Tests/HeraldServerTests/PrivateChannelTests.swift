import HeraldCore
import HeraldTestSupport
import Testing

/// Private channels authorized by row level security policies on realtime.messages (reference section 4.4).
@Suite struct PrivateChannelTests {
    static let policies = """
        CREATE POLICY "members read" ON realtime.messages FOR SELECT TO authenticated
            USING (realtime.topic() = 'room:1' AND current_setting('request.jwt.claims', true)::jsonb->>'team' = 'a');
        CREATE POLICY "writer writes" ON realtime.messages FOR INSERT TO authenticated
            WITH CHECK (realtime.topic() = 'room:1' AND extension = 'broadcast'
                AND current_setting('request.jwt.claims', true)::jsonb->>'sub' = 'writer');
        """

    func socket(_ herald: HeraldInstance, sub: String, team: String, role: String = "authenticated") async throws -> TestWebSocket {
        try await herald.socket(token: try await herald.token(role: role, extra: ["sub": .string(sub), "team": .string(team)]))
    }

    /// Frames up to the reply of a heartbeat sent now: what the server had queued for this socket.
    func drain(_ socket: TestWebSocket) async throws -> [TestWebSocket.Frame] {
        try await socket.sendText(#"[null,"hb","phoenix","heartbeat",{}]"#)
        return Array(try await socket.receive(until: { $0.text.contains(#""hb""#) }).dropLast())
    }

    @Test func policiesDecideWhoJoinsReadsAndWrites() async throws {
        try await withHerald { herald in
            try await herald.script(Self.policies)
            let reader = try await socket(herald, sub: "reader", team: "a")
            let writer = try await socket(herald, sub: "writer", team: "a")
            let outsider = try await socket(herald, sub: "outsider", team: "b")
            let service = try await socket(herald, sub: "backend", team: "z", role: "service_role")

            let config: JSONValue = ["private": true, "broadcast": ["ack": true], "presence": ["enabled": true, "key": "k"]]
            #expect(try await reader.joinV2("realtime:room:1", config: config).reply.arrayValue?[4]["status"] == "ok")
            #expect(try await writer.joinV2("realtime:room:1", config: config).reply.arrayValue?[4]["status"] == "ok")
            let (refused, _) = try await outsider.joinV2("realtime:room:1", config: config)
            #expect(refused.arrayValue?[4] == ["status": "error", "response": ["reason": "Unauthorized: You do not have permissions to read from this Channel topic: room:1"]])
            _ = try await drain(reader)
            let (other, _) = try await reader.joinV2("realtime:room:2", config: ["private": true], ref: "9")
            #expect(other.arrayValue?[4]["status"] == "error")
            // service_role bypasses the policies.
            #expect(try await service.joinV2("realtime:room:2", config: ["private": true]).reply.arrayValue?[4]["status"] == "ok")
            _ = try await drain(reader)
            _ = try await drain(writer)

            // The writer may broadcast; the reader gets it.
            try await writer.push("1", "2", "realtime:room:1", "broadcast", ["type": "broadcast", "event": "e", "payload": ["n": 1]])
            #expect(try await writer.receiveJSON().arrayValue?[4] == ["status": "ok", "response": [:]])
            #expect(try await reader.receiveJSON().arrayValue?[4]["payload"] == ["n": 1])

            // The reader may not: dropped, and no ack either.
            try await reader.push("1", "3", "realtime:room:1", "broadcast", ["type": "broadcast", "event": "e", "payload": ["n": 2]])
            #expect(try await drain(reader).isEmpty)
            #expect(try await drain(writer).isEmpty)

            // Nobody may write presence here: an error reply, and nobody sees a join.
            try await reader.push("1", "4", "realtime:room:1", "presence", ["type": "presence", "event": "track", "payload": ["online": true]])
            #expect(try await reader.receiveJSON().arrayValue?[4] == ["status": "error", "response": [:]])
            #expect(try await drain(writer).isEmpty)

            // REST follows the same write policy: the writer's private message is delivered, the reader's refused (single)
            // or skipped (batch).
            func post(_ path: String, token: String, body: String) async throws -> Int {
                try await HTTPProbe.request(
                    port: herald.port, method: "POST", path: path,
                    headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: Array(body.utf8)
                ).status
            }
            let writerToken = try await herald.token(extra: ["sub": "writer", "team": "a"])
            let readerToken = try await herald.token(extra: ["sub": "reader", "team": "a"])
            #expect(try await post("/api/broadcast/room:1/events/rest?private=true", token: writerToken, body: #"{"n":3}"#) == 202)
            // A user broadcast: a V2 binary frame (kind 4) ending with the JSON payload.
            #expect(try await reader.receive().payload.suffix(7) == Array(#"{"n":3}"#.utf8))
            #expect(try await drain(writer).count == 1)
            #expect(try await post("/api/broadcast/room:1/events/rest?private=true", token: readerToken, body: #"{"n":4}"#) == 403)
            let batch = #"{"messages":[{"topic":"room:1","event":"e","payload":{"n":5},"private":true}]}"#
            #expect(try await post("/api/broadcast", token: readerToken, body: batch) == 202)
            #expect(try await drain(writer).isEmpty)

            // A refreshed token that may no longer read closes the channel.
            let moved = try await herald.token(extra: ["sub": "reader", "team": "b"])
            try await reader.push("1", nil, "realtime:room:1", "access_token", ["access_token": .string(moved)])
            let closing = try await reader.receive(until: { $0.text.contains("phx_close") })
            #expect(closing.contains { $0.text.contains("Unauthorized: You do not have permissions to read from this Channel topic: room:1") })
            for socket in [reader, writer, outsider, service] { await socket.close() }
        }
    }
}
