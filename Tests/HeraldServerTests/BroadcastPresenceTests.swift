import Foundation
import HeraldCore
import HeraldServer
import HeraldTestSupport
import Testing

/// Broadcast and presence over raw V1 and V2 sockets, and the REST endpoints.
@Suite struct BroadcastPresenceTests {
    func joinV1(_ socket: TestWebSocket, _ topic: String, config: JSONValue, token: String? = nil) async throws -> JSONValue {
        var payload: JSONObject = ["config": config]
        if let token { payload["access_token"] = .string(token) }
        let join: JSONValue = ["topic": .string(topic), "event": "phx_join", "payload": .object(payload), "ref": "1", "join_ref": "1"]
        try await socket.sendText(join.jsonString)
        return try await socket.receiveJSON()
    }

    /// Sends a heartbeat and returns every frame up to its reply: proves nothing else was pending.
    func drain(_ socket: TestWebSocket, v1: Bool = false) async throws -> [TestWebSocket.Frame] {
        try await socket.sendText(v1 ? #"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"hb"}"# : #"[null,"hb","phoenix","heartbeat",{}]"#)
        return try await socket.receive(until: { $0.text.contains(#""hb""#) }).dropLast()
    }

    @Test func jsonBroadcastWithSelfAckAndBothSerializers() async throws {
        try await withHerald { herald in
            let sender = try await herald.socket()
            let listener = try await herald.socket()
            let v1 = try await herald.socket(vsn: "1.0.0")
            try await sender.joinV2("realtime:room1", config: ["broadcast": ["self": false, "ack": true]])
            try await listener.joinV2("realtime:room1", config: [:])
            _ = try await joinV1(v1, "realtime:room1", config: [:])

            try await sender.push("1", "2", "realtime:room1", "broadcast", ["type": "broadcast", "event": "msg", "payload": ["text": "hi"]])
            #expect(try await sender.receive().text == #"["1","2","realtime:room1","phx_reply",{"status":"ok","response":{}}]"#)
            #expect(try await listener.receive().text == #"[null,null,"realtime:room1","broadcast",{"type":"broadcast","event":"msg","payload":{"text":"hi"}}]"#)
            #expect(
                try await v1.receive().text
                    == #"{"topic":"realtime:room1","event":"broadcast","payload":{"type":"broadcast","event":"msg","payload":{"text":"hi"}},"ref":null}"#
            )
            #expect(try await drain(sender).isEmpty)  // self is off
            for socket in [sender, listener, v1] { await socket.close() }
        }
    }

    @Test func binaryUserBroadcastRoundTripsByteExactly() async throws {
        try await withHerald { herald in
            let sender = try await herald.socket()
            let v1 = try await herald.socket(vsn: "1.0.0")
            try await sender.joinV2("realtime:room1", config: ["broadcast": ["self": true]])
            _ = try await joinV1(v1, "realtime:room1", config: [:])
            // Appendix B.2: kind 3 in, kind 4 out.
            let json = Array(#"{"text":"hi"}"#.utf8)
            try await sender.sendBinary([3, 1, 1, 14, 3, 0, 1] + Array("12realtime:room1msg".utf8) + json)
            let echoed = try await sender.receive()
            #expect(echoed.isBinary)
            #expect(echoed.payload == [4, 14, 3, 0, 1] + Array("realtime:room1msg".utf8) + json)
            #expect(
                try await v1.receive().text
                    == #"{"topic":"realtime:room1","event":"broadcast","payload":{"event":"msg","payload":{"text":"hi"},"type":"broadcast"},"ref":null}"#
            )
            // Raw bytes reach V2 sockets only.
            try await sender.sendBinary([3, 0, 0, 14, 3, 0, 0] + Array("realtime:room1bin".utf8) + [0xDE, 0xAD])
            #expect(try await sender.receive().payload == [4, 14, 3, 0, 0] + Array("realtime:room1bin".utf8) + [0xDE, 0xAD])
            #expect(try await drain(v1, v1: true).isEmpty)
            // Junk binary frames are dropped; the socket keeps working.
            try await sender.sendBinary([9, 9, 9])
            try await sender.sendBinary([3, 200, 1])
            #expect(try await drain(sender).isEmpty)
            await sender.close()
            await v1.close()
        }
    }

    @Test func privateAndPublicTopicsAreApart() async throws {
        try await withHerald { herald in
            let service = try await herald.token(role: "service_role")
            let privateSocket = try await herald.socket(token: service)
            let publicSocket = try await herald.socket()
            try await privateSocket.joinV2("realtime:x", config: ["private": true])
            try await publicSocket.joinV2("realtime:x", config: ["broadcast": ["self": true]])
            try await publicSocket.push("1", "2", "realtime:x", "broadcast", ["event": "e", "payload": [:]])
            #expect(try await publicSocket.receive().text.contains(#""broadcast""#))
            #expect(try await drain(privateSocket).isEmpty)
            // A private join is refused unless a policy on realtime.messages lets the token read the topic.
            let (refused, _) = try await publicSocket.joinV2("realtime:y", config: ["private": true], ref: "5")
            #expect(refused.arrayValue?[4]["response"]?["reason"] == "Unauthorized: You do not have permissions to read from this Channel topic: y")
            await privateSocket.close()
            await publicSocket.close()
        }
    }

    @Test func presenceJoinUpdateAndLeaveOnAbruptClose() async throws {
        try await withHerald { herald in
            let alice = try await herald.socket()
            let bob = try await herald.socket()
            let (_, _) = try await alice.joinV2("realtime:lobby", config: ["presence": ["key": "alice", "enabled": true]])
            #expect(try await alice.receive().text == #"["1",null,"realtime:lobby","presence_state",{}]"#)
            try await bob.joinV2("realtime:lobby", config: ["presence": ["key": "bob", "enabled": true]])
            #expect(try await bob.receive().text == #"["1",null,"realtime:lobby","presence_state",{}]"#)

            try await alice.push("1", "2", "realtime:lobby", "presence", ["type": "presence", "event": "track", "payload": ["status": "online"]])
            #expect(try await alice.receive().text == #"["1","2","realtime:lobby","phx_reply",{"status":"ok","response":{}}]"#)
            for socket in [alice, bob] {
                let diff = try await socket.receiveJSON().arrayValue ?? []
                #expect(diff.prefix(4) == [.null, .null, "realtime:lobby", "presence_diff"])
                let metas = diff[4]["joins"]?["alice"]?["metas"]?.arrayValue
                #expect(metas?.count == 1 && metas?.first?["status"] == "online")
                #expect(metas?.first?["phx_ref"]?.stringValue?.count == 16)
                #expect(diff[4]["leaves"] == [:])
            }

            // An update is a leave of the old meta and a join of the new one pointing back at it.
            try await alice.push("1", "3", "realtime:lobby", "presence", ["type": "presence", "event": "track", "payload": ["status": "away"]])
            _ = try await alice.receive()
            let update = try await bob.receiveJSON().arrayValue?[4]
            let oldRef = update?["leaves"]?["alice"]?["metas"]?.arrayValue?.first?["phx_ref"]
            #expect(update?["leaves"]?["alice"]?["metas"]?.arrayValue?.first?["status"] == "online")
            #expect(update?["joins"]?["alice"]?["metas"]?.arrayValue?.first?["phx_ref_prev"] == oldRef)

            // A late joiner gets the whole state.
            let carol = try await herald.socket()
            try await carol.joinV2("realtime:lobby", config: ["presence": ["key": "carol", "enabled": true]])
            let state = try await carol.receiveJSON().arrayValue?[4]
            #expect(state?["alice"]?["metas"]?.arrayValue?.first?["status"] == "away")

            // Alice's socket dies without a goodbye: everyone else sees her leave.
            await alice.abort()
            let leave = try await bob.receive(until: { $0.text.contains("presence_diff") && $0.text.contains(#""leaves":{"alice""#) })
            #expect(!leave.isEmpty)
            await bob.close()
            await carol.close()
        }
    }

    @Test func aSilentSocketIsClosedAndItsPresenceLeaves() async throws {
        try await withHerald({ $0.idleTimeoutMilliseconds = 8000 }) { herald in  // the watcher's set-up and heartbeats must fit in it on a loaded machine
            let quiet = try await herald.socket()
            let watcher = try await herald.socket()
            try await quiet.joinV2("realtime:lobby", config: ["presence": ["key": "quiet", "enabled": true]])
            _ = try await quiet.receive()
            try await watcher.joinV2("realtime:lobby", config: ["presence": ["key": "watcher", "enabled": true]])
            _ = try await watcher.receive()
            try await quiet.push("1", "2", "realtime:lobby", "presence", ["event": "track", "payload": [:]])
            // The watcher keeps talking; the quiet one stops.
            var sawLeave = false
            for _ in 0..<200 where !sawLeave {
                try await watcher.sendText(#"[null,"hb","phoenix","heartbeat",{}]"#)
                let frames = try await watcher.receive(until: { $0.text.contains(#""hb""#) })
                sawLeave = frames.contains { $0.text.contains(#""leaves":{"quiet""#) }
                try await Task.sleep(for: .milliseconds(250))
            }
            #expect(sawLeave)
            #expect(try await quiet.receive(until: { $0.isClose }).last?.closeCode == 1000)
            await watcher.close()
        }
    }

    @Test func restBroadcastsReachSockets() async throws {
        try await withHerald { herald in
            let v2 = try await herald.socket()
            let v1 = try await herald.socket(vsn: "1.0.0")
            try await v2.joinV2("realtime:room1", config: [:])
            _ = try await joinV1(v1, "realtime:room1", config: [:])
            let token = try await herald.token()
            let batch = #"{"messages":[{"topic":"room1","event":"cursor","payload":{"x":1}}]}"#
            let accepted = try await HTTPProbe.request(
                port: herald.port, method: "POST", path: "/api/broadcast",
                headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")], body: Array(batch.utf8)
            )
            #expect(accepted.status == 202)
            #expect(try await v2.receive().text == #"[null,null,"realtime:room1","broadcast",{"event":"cursor","payload":{"x":1},"type":"broadcast"}]"#)
            _ = try await v1.receive()

            let single = try await HTTPProbe.request(
                port: herald.port, method: "POST", path: "/realtime/v1/api/broadcast/room1/events/ping",
                headers: [("apikey", token)], body: Array(#"{"n":1}"#.utf8)
            )
            #expect(single.status == 202)
            #expect(try await v2.receive().payload == [4, 14, 4, 0, 1] + Array("realtime:room1ping".utf8) + Array(#"{"n":1}"#.utf8))
            #expect(try await v1.receive().text.contains(#""payload":{"event":"ping","payload":{"n":1},"type":"broadcast"}"#))

            let unauthorized = try await HTTPProbe.request(port: herald.port, method: "POST", path: "/api/broadcast", body: Array(batch.utf8))
            #expect(unauthorized.status == 401 && unauthorized.body == #"{"message":"Unauthorized"}"#)
            let unsupported = try await HTTPProbe.request(
                port: herald.port, method: "POST", path: "/api/broadcast/room1/events/e",
                headers: [("apikey", token), ("Content-Type", "text/plain")], body: Array("x".utf8)
            )
            #expect(unsupported.status == 415)
            #expect(unsupported.body == #"{"error":"Unsupported Media Type. Use application/json or application/octet-stream"}"#)
            let invalid = try await HTTPProbe.request(
                port: herald.port, method: "POST", path: "/api/broadcast",
                headers: [("apikey", token)], body: Array(#"{"messages":[{"topic":"room1"}]}"#.utf8)
            )
            #expect(invalid.status == 422)
            #expect(invalid.body == #"{"errors":{"messages":[{"event":["can't be blank"],"payload":["can't be blank"]}]}}"#)
            await v2.close()
            await v1.close()
        }
    }
}
