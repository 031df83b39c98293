import Foundation
import HeraldCore
import HeraldPostgres
import HeraldServer
import HeraldTestSupport
import Testing

/// Clients that rejoin with `postgres_changes_resume`: what they missed, then live changes, exactly once.
@Suite struct ResumeTests {
    static let room = "44444444-4444-4444-4444-444444444444"
    static let otherRoom = "55555555-5555-5555-5555-555555555555"
    static let sender = "66666666-6666-6666-6666-666666666666"
    static let binding: JSONValue = ["event": "INSERT", "schema": "public", "table": "messages", "filter": .string("room_id=eq.\(room)")]

    /// The `content` and `position` of a postgres_changes frame; nil for any other frame.
    static func change(_ frame: JSONValue) -> (content: String, position: String)? {
        guard frame.arrayValue?[3] == "postgres_changes", let data = frame.arrayValue?[4]["data"],
            let content = data["record"]?["content"]?.stringValue, let position = data["position"]?.stringValue
        else { return nil }
        return (content, position)
    }

    /// The next frame, which must be a postgres_changes event.
    static func nextChange(_ socket: TestWebSocket) async throws -> (content: String, position: String) {
        let frame = try await socket.receiveJSON()
        guard let change = change(frame) else { throw HarnessError("expected a postgres_changes event, got \(frame.jsonString)") }
        return change
    }

    static func insert(_ herald: HeraldInstance, room: String = room, _ content: String) async throws {
        try await herald.sql("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $2, $3)", [room, sender, content])
    }

    /// Drops the slot of a replication instance once it has stopped (slots belong to the whole test cluster).
    @Test(arguments: [ChangeSourceConfiguration.Kind.trigger, .replication])
    func aRejoinGetsExactlyWhatItMissedInOrderThenLiveChanges(_ kind: ChangeSourceConfiguration.Kind) async throws {
        var source = ChangeSourceConfiguration()
        var url = ""
        try await withHerald({
            $0.changeSource.kind = kind
            source = $0.changeSource
        }) { herald in
            url = herald.databaseURL
            let socket = try await herald.socket()
            try await socket.joinV2("realtime:room", config: ["postgres_changes": [Self.binding]])
            for n in 1...3 { try await Self.insert(herald, "\(n)") }
            var last = ""
            for n in 1...3 {
                let change = try await Self.nextChange(socket)
                #expect(change.content == "\(n)")
                #expect(change.position > last)
                last = change.position
            }
            await socket.close()

            // Missed while away, among changes the channel's filter leaves out.
            for n in 4...8 {
                try await Self.insert(herald, "\(n)")
                try await Self.insert(herald, room: Self.otherRoom, "other \(n)")
            }
            // Rows keep coming while the channel rejoins: each must arrive once, in commit order.
            let writer = Task {
                for n in 9...60 { try await Self.insert(herald, "\(n)") }
            }
            let again = try await herald.socket()
            let (reply, system) = try await again.joinV2(
                "realtime:room",
                config: ["postgres_changes": [Self.binding], "postgres_changes_resume": .string(last)]
            )
            #expect(reply.arrayValue?[4]["status"] == "ok")
            #expect(system?.arrayValue?[4]["status"] == "ok")
            try await writer.value
            var contents: [String] = []
            for _ in 4...60 {
                let change = try await Self.nextChange(again)
                #expect(change.position > last)
                last = change.position
                contents.append(change.content)
            }
            #expect(contents == (4...60).map { "\($0)" })
            try await Self.insert(herald, "61")
            #expect(try await Self.nextChange(again).content == "61")
            await again.close()
        }
        if source.kind == .replication { try await dropReplicationSlot(source.slot, databaseURL: url) }
    }

    @Test func theOfficialPythonClientCanAskToResume() async throws {
        let python = try await PythonEnvironment.shared.interpreter(packageRoot: InteropTests.packageRoot)
        let script = InteropTests.packageRoot.appendingPathComponent("Tests/HeraldServerTests/Python/postgres_changes.py").path
        try await withHerald { herald in
            let socket = try await herald.socket()
            try await socket.joinV2("realtime:room", config: ["postgres_changes": [Self.binding]])
            var positions: [String] = []
            for n in 0..<5 {
                try await Self.insert(herald, "\(n)")
                positions.append(try await Self.nextChange(socket).position)
            }
            await socket.close()
            let probe = try LineProcess([
                python, script, "ws://127.0.0.1:\(herald.port)/socket", try await herald.token(), "INSERT", "messages", "room_id=eq.\(Self.room)", "3",
                positions[1],
            ])
            // The replay follows the join reply at once: the probe may print it before its `SUBSCRIBED` line.
            var lines = probe.outputLines.makeAsyncIterator()
            var subscribed = false
            var contents: [String] = []
            while contents.count < 3, let line = await lines.next() {
                if line == "SUBSCRIBED" {
                    subscribed = true
                    continue
                }
                contents.append(try JSONValue.parse(line)["data"]?["record"]?["content"]?.stringValue ?? line)
            }
            if !subscribed { subscribed = await lines.next() == "SUBSCRIBED" }
            #expect(try await probe.waitForExit() == 0)
            #expect(subscribed)
            #expect(contents == ["2", "3", "4"])
        }
    }

    @Test func positionsHeraldCannotVouchForGetASystemErrorThenLiveChanges() async throws {
        // A window of one byte keeps nothing but the newest position.
        try await withHerald({ $0.changeSource.retention = RetentionWindow(maxBytes: 1) }) { herald in
            let socket = try await herald.socket()
            try await socket.joinV2("realtime:room", config: ["postgres_changes": [Self.binding]])
            try await Self.insert(herald, "1")
            let first = try await Self.nextChange(socket)
            try await Self.insert(herald, "2")
            _ = try await Self.nextChange(socket)
            await socket.close()

            let cases: [(position: String, message: String)] = [
                (first.position, "Cannot resume postgres_changes from \(first.position): it is older than the changes this server keeps. Refetch to catch up."),
                ("nonsense", "Cannot resume postgres_changes from 'nonsense': it is not a change position. Refetch to catch up."),
                (
                    "trigger-0000000000000001:0000000000000001:00000000",
                    "Cannot resume postgres_changes from trigger-0000000000000001:0000000000000001:00000000: it belongs to another change stream (Herald restarted without logical replication, or changed its change source). Refetch to catch up."
                ),
            ]
            var newest = ""
            for (index, (position, message)) in cases.enumerated() {
                let again = try await herald.socket()
                let topic = "realtime:room\(index)"
                try await again.joinV2(topic, config: ["postgres_changes": [Self.binding], "postgres_changes_resume": .string(position)])
                let error = try await again.receiveJSON()
                #expect(
                    error.jsonString
                        == JSONValue.array([
                            "1", .null, .string(topic), "system",
                            ["extension": "postgres_changes", "status": "error", "message": .string(message), "channel": .string("room\(index)")],
                        ]).jsonString
                )
                // The channel is subscribed all the same: live changes follow.
                try await Self.insert(herald, "live \(index)")
                let live = try await Self.nextChange(again)
                #expect(live.content == "live \(index)")
                newest = live.position
                await again.close()
            }
            // The newest position is still known: nothing to replay, live changes follow.
            let current = try await herald.socket()
            try await current.joinV2("realtime:room", config: ["postgres_changes": [Self.binding], "postgres_changes_resume": .string(newest)])
            try await Self.insert(herald, "after")
            #expect(try await Self.nextChange(current).content == "after")
            await current.close()
        }
    }
}
