import HeraldCore
import HeraldPostgres
import HeraldServer
import HeraldTestSupport
import Testing

/// Upgrade-time authentication, framing, heartbeats and bad input over real sockets.
@Suite struct ConnectionTests {
    func refusal(_ herald: HeraldInstance, target: String, headers: [(String, String)] = []) async throws -> TestWebSocket.UpgradeRefused {
        do {
            let socket = try await TestWebSocket.connect(port: herald.port, target: target, headers: headers)
            await socket.close()
            throw HarnessError("the upgrade of \(target) was accepted")
        } catch let refused as TestWebSocket.UpgradeRefused {
            return refused
        }
    }

    @Test func upgradeRefusalsCarryUpstreamStatusesAndErrors() async throws {
        try await withHerald { herald in
            let valid = try await herald.token()
            let missing = try await refusal(herald, target: "/socket/websocket?vsn=1.0.0")
            #expect(missing.status == 401 && missing.body == #"{"error":"API key is missing"}"#)

            let badVersion = try await refusal(herald, target: "/socket/websocket?apikey=\(valid)&vsn=3.0.0")
            #expect(badVersion.status == 403 && badVersion.body.isEmpty)

            let expired = try await refusal(herald, target: "/socket/websocket?apikey=\(try await herald.token(expiresIn: -10))")
            #expect(expired.status == 401 && expired.body == #"{"error":"Token has expired"}"#)

            let garbage = try await refusal(herald, target: "/socket/websocket?apikey=not-a-jwt")
            #expect(garbage.status == 401 && garbage.body == #"{"error":"The token provided is not a valid JWT"}"#)

            let forged = try await TokenIssuer.sign(["role": "service_role", "exp": 9_999_999_999], secret: "some-other-secret-that-is-also-long-enough-0123456789")
            let badSignature = try await refusal(herald, target: "/socket/websocket?apikey=\(forged)")
            #expect(badSignature.status == 401 && badSignature.body == #"{"error":"Failed to validate JWT signature"}"#)

            let roleless = try await TokenIssuer.sign(["exp": 9_999_999_999], secret: HeraldInstance.secret)
            let noRole = try await refusal(herald, target: "/socket/websocket?apikey=\(roleless)")
            #expect(noRole.status == 401 && noRole.body == #"{"error":"Fields `role` and `exp` are required in JWT"}"#)

            // The x-api-key header wins over the query parameter.
            let socket = try await TestWebSocket.connect(port: herald.port, target: "/realtime/v1/websocket?apikey=bad", headers: [("x-api-key", valid)])
            await socket.close()
        }
    }

    @Test func heartbeatsAndUnmatchedTopicsInBothVersions() async throws {
        try await withHerald { herald in
            let v2 = try await herald.socket(vsn: "2.0.0")
            try await v2.sendText(#"[null,"7","phoenix","heartbeat",{}]"#)
            #expect(try await v2.receive().text == #"[null,"7","phoenix","phx_reply",{"status":"ok","response":{}}]"#)
            try await v2.sendText(#"["1","8","realtime:nope","broadcast",{}]"#)
            #expect(try await v2.receive().text == #"[null,"8","realtime:nope","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#)
            await v2.close()

            let v1 = try await herald.socket(vsn: nil)
            try await v1.sendText(#"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":null}"#)
            #expect(try await v1.receive().text == #"{"topic":"phoenix","event":"phx_reply","payload":{"status":"ok","response":{}},"ref":null}"#)
            try await v1.sendText(#"{"topic":"other","event":"phx_join","payload":{},"ref":"2","join_ref":"2"}"#)
            #expect(try await v1.receive().text == #"{"topic":"other","event":"phx_reply","payload":{"status":"error","response":{"reason":"unmatched topic"}},"ref":"2"}"#)
            await v1.close()
        }
    }

    @Test func joinLeaveAndDuplicateJoinInV2() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            let (reply, _) = try await socket.joinV2("realtime:room1", config: ["broadcast": ["self": false], "presence": ["key": ""], "postgres_changes": []])
            #expect(reply.jsonString == #"["1","1","realtime:room1","phx_reply",{"status":"ok","response":{"postgres_changes":[]}}]"#)
            try await socket.push("2", "2", "realtime:room1", "phx_join", ["config": [:]])
            #expect(try await socket.receive().text == #"["1","1","realtime:room1","phx_close",{}]"#)
            #expect(try await socket.receive().text == #"["2","2","realtime:room1","phx_reply",{"status":"ok","response":{"postgres_changes":[]}}]"#)
            try await socket.push("2", "3", "realtime:room1", "phx_leave", [:])
            #expect(try await socket.receive().text == #"["2","3","realtime:room1","phx_reply",{"status":"ok","response":{}}]"#)
            #expect(try await socket.receive().text == #"["2","2","realtime:room1","phx_close",{}]"#)
            await socket.close()
        }
    }

    @Test func badInputIsDroppedAndTheSocketKeepsWorking() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            for junk in ["not json", "{}", "[1,2]", #"["1","2",3,"e",{}]"#, String(repeating: "[", count: 10_000), #"{"topic":"phoenix"}"#] {
                try await socket.sendText(junk)
            }
            try await socket.sendBinary([0xFF, 0x00, 0x13, 0x37])
            try await socket.sendBinary([])
            try await socket.sendFrame(opcode: 0x1, payload: [0xC3, 0x28])  // invalid UTF-8
            try await socket.sendText(#"[null,"9","phoenix","heartbeat",{}]"#)
            #expect(try await socket.receive().text == #"[null,"9","phoenix","phx_reply",{"status":"ok","response":{}}]"#)
            await socket.close()
        }
    }

    @Test func joinsOverTheServerLimitAreRefusedAndTheSocketCloses() async throws {
        try await withHerald({ $0.maxJoinsPerSecond = 2 }) { herald in
            let socket = try await herald.socket()
            // Far more joins than two per second: however slowly a loaded machine sends them, some second gets a third,
            // and the server closes the socket (later pushes then fail, which ends the loop).
            for index in 0..<30 {
                guard (try? await socket.push(String(index), String(index), "realtime:room\(index)", "phx_join", ["config": [:]])) != nil else { break }
            }
            let frames = try await socket.receive(until: { $0.isClose })
            #expect(frames.contains { $0.text.contains(#""reason":"ClientJoinRateLimitReached: Too many joins per second""#) })
            #expect(frames.last?.closeCode == 1001)
        }
    }

    @Test func tenThousandGarbageFramesHurtNobody() async throws {
        try await withHerald { herald in
            let watcher = try await herald.socket()
            let binding: JSONValue = ["event": "INSERT", "schema": "public", "table": "messages"]
            _ = try await watcher.joinV2("realtime:watch", config: ["postgres_changes": [binding]])
            // A filter value that looks like SQL is a value: it binds (uuid column → refused) and never reaches SQL.
            let hostile: JSONValue = ["event": "*", "schema": "public", "table": "messages", "filter": "room_id=eq.1'); DROP TABLE messages; --"]
            let (_, refusal) = try await watcher.joinV2("realtime:hostile", config: ["postgres_changes": [hostile]], ref: "7")
            #expect(refusal?.arrayValue?[4]["status"] == "error")

            let attacker = try await herald.socket()
            var random = SystemRandomNumberGenerator()
            let writer = Task {
                for index in 0..<20 {
                    try await herald.sql(
                        "INSERT INTO messages (room_id, sender_id, content) VALUES (gen_random_uuid(), gen_random_uuid(), $1)", [String(index)]
                    )
                }
            }
            for index in 0..<10_000 {
                let length = Int.random(in: 0...64, using: &random)
                let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
                if index % 2 == 0 {
                    try await attacker.sendBinary(bytes)
                } else {
                    try await attacker.sendText(String(decoding: bytes, as: UTF8.self))
                }
            }
            try await writer.value
            var received = 0
            while received < 20 {
                if try await watcher.receiveJSON().arrayValue?[3] == "postgres_changes" { received += 1 }
            }
            // The table is still there, and the attacker's socket still answers.
            #expect(try await herald.sql("SELECT count(*) FROM messages").values[0][0] == "20")
            try await attacker.sendText(#"[null,"hb","phoenix","heartbeat",{}]"#)
            #expect(try await attacker.receive(until: { $0.text.contains(#""hb""#) }).last?.text.contains(#""status":"ok""#) == true)
            await attacker.close()
            await watcher.close()
        }
    }

    @Test func pingIsAnsweredWithPong() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            try await socket.sendFrame(opcode: 0x9, payload: Array("hi".utf8))
            let pong = try await socket.receive()
            #expect(pong.opcode == 0xA && pong.text == "hi")
            await socket.close()
        }
    }

    @Test func oversizedMessagesCloseOnlyThatSocket() async throws {
        try await withHerald { herald in
            let bystander = try await herald.socket()
            // Two fragments under the frame limit whose message is over the 5,000,000-byte limit.
            let offender = try await herald.socket()
            let half = Array(repeating: UInt8(ascii: "x"), count: 2_600_000)
            try await offender.sendFrame(opcode: 0x1, payload: half, fin: false)
            try await offender.sendFrame(opcode: 0x0, payload: half, fin: true)
            #expect(try await offender.receive().closeCode == 1009)
            // One frame over the limit is refused from its header; the client may see the close or a reset.
            let greedy = try await herald.socket()
            try? await greedy.sendText(String(repeating: "x", count: 5_000_001))
            if let frame = try? await greedy.receive() { #expect(frame.closeCode == 1009) }
            try await bystander.sendText(#"[null,"1","phoenix","heartbeat",{}]"#)
            #expect(try await bystander.receive().text.contains(#""status":"ok""#))
            await bystander.close()
        }
    }

    @Test func connectionsBeyondTheLimitAreRefused() async throws {
        try await withHerald({ $0.maxConnections = 1 }) { herald in
            let first = try await herald.socket()
            let refused = try await refusal(herald, target: "/socket/websocket?apikey=\(try await herald.token())")
            #expect(refused.status == 429 && refused.body == #"{"error":"Too many connected users"}"#)
            await first.close()
        }
    }

    @Test func aChannelWhoseTokenExpiresIsClosedAndSilenced() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            let listener = try await herald.socket()
            // Signed just before the join, and long enough for it even while the whole suite starts (CI once took
            // over 5 s from signing to the join).
            let shortLived = try await herald.token(expiresIn: 10)
            try await socket.push("1", "1", "realtime:room1", "phx_join", ["config": [:], "access_token": .string(shortLived)])
            #expect(try await socket.receiveJSON().arrayValue?[4]["status"] == "ok")
            try await listener.joinV2("realtime:room1", config: [:])
            let frames = try await socket.receive(until: { $0.text.contains("phx_close") })
            #expect(frames.contains { $0.text.contains(#""extension":"system","status":"error","message":"Token has expired"#) })
            #expect(frames.last?.text == #"["1","1","realtime:room1","phx_close",{}]"#)
            // The expired channel's broadcasts go nowhere.
            try await socket.push("1", "2", "realtime:room1", "broadcast", ["event": "e", "payload": [:]])
            try await listener.sendText(#"[null,"hb","phoenix","heartbeat",{}]"#)
            #expect(try await listener.receive().text.contains(#""hb""#))
            await socket.close()
            await listener.close()
        }
    }

    @Test func aConsumerThatStopsReadingIsClosedWhileOthersKeepReceiving() async throws {
        try await withHerald({ $0.maxBufferedBytes = 256 << 10 }) { herald in
            let token = try await herald.token()
            let stalled = try await offloaded {
                let socket = try StalledWebSocket(port: herald.port, target: "/socket/websocket?apikey=\(token)&vsn=2.0.0")
                try socket.sendText(#"["1","1","realtime:flood","phx_join",{"config":{}}]"#)
                return socket
            }
            let reader = try await herald.socket()
            _ = try await reader.joinV2("realtime:flood", config: [:])
            let publisher = try await herald.socket()
            _ = try await publisher.joinV2("realtime:flood", config: [:])
            let pad = JSONValue.string(String(repeating: "x", count: 8_000))
            let messages = 1_000
            for index in 0..<messages {
                try await publisher.push("1", nil, "realtime:flood", "broadcast", ["type": "broadcast", "event": "e", "payload": ["i": .string(String(index)), "pad": pad]])
            }
            var received = 0
            while received < messages {
                if try await reader.receive().text.contains(#""broadcast""#) { received += 1 }
            }
            // The stalled socket gets what the kernel buffers held, then the end of the stream; never all 8 MB.
            let (bytes, ended) = try await offloaded { stalled.drain(timeout: 20) }
            #expect(ended)
            #expect(bytes < messages * 8_000)
            await reader.close()
            await publisher.close()
        }
    }

    @Test func healthcheck() async throws {
        try await withHerald { herald in
            let response = try await HTTPProbe.get(port: herald.port, path: "/healthcheck")
            #expect(response.status == 200 && response.body == "ok")
        }
    }
}
