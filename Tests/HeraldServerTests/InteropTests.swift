import Foundation
import HeraldCore
import HeraldTestSupport
import Testing

/// The official Python `realtime` client (from PyPI) against Herald, unchanged.
@Suite struct InteropTests {
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func pythonClientReceivesExactlyTheRowsOfItsRoom() async throws {
        let python = try await PythonEnvironment.shared.interpreter(packageRoot: Self.packageRoot)
        let script = Self.packageRoot.appendingPathComponent("Tests/HeraldServerTests/Python/postgres_changes.py").path
        try await withHerald { herald in
            let room = UUID().uuidString.lowercased()
            let other = UUID().uuidString.lowercased()
            let probe = try LineProcess([
                python, script, "ws://127.0.0.1:\(herald.port)/socket", try await herald.token(), "INSERT", "messages", "room_id=eq.\(room)", "3",
            ])
            var lines = probe.outputLines.makeAsyncIterator()
            #expect(await lines.next() == "SUBSCRIBED")
            for (index, target) in [room, other, room, other, room].enumerated() {
                try await herald.sql(
                    "INSERT INTO messages (room_id, sender_id, content) VALUES ($1, gen_random_uuid(), $2)",
                    [target, "message \(index)"]
                )
            }
            var received: [JSONValue] = []
            while received.count < 3, let line = await lines.next() {
                received.append(try JSONValue.parse(line))
            }
            #expect(try await probe.waitForExit() == 0)
            #expect(received.count == 3)
            for payload in received {
                #expect(payload["data"]?["type"] == "INSERT")
                #expect(payload["data"]?["record"]?["room_id"] == .string(room))
            }
            #expect(received.compactMap { $0["data"]?["record"]?["content"]?.stringValue } == ["message 0", "message 2", "message 4"])
        }
    }

    @Test func pythonClientsBroadcastWithSelfAckAndREST() async throws {
        let python = try await PythonEnvironment.shared.interpreter(packageRoot: Self.packageRoot)
        let script = Self.packageRoot.appendingPathComponent("Tests/HeraldServerTests/Python/broadcast.py").path
        try await withHerald { herald in
            let probe = try LineProcess([python, script, "ws://127.0.0.1:\(herald.port)/socket", try await herald.token()])
            var lines = probe.outputLines.makeAsyncIterator()
            let summary = try JSONValue.parse(await lines.next() ?? "")
            #expect(try await probe.waitForExit() == 0)
            // A has self on: it gets its own message, B's, and the REST one; B (self off) gets A's and the REST one.
            #expect(summary["a"] == [["n": 1], ["n": 2], ["n": 3]])
            #expect(summary["b"] == [["n": 1], ["n": 3]])
        }
    }

    @Test func pythonPresenceOfThreeClientsSurvivesAnAbruptDisconnect() async throws {
        let python = try await PythonEnvironment.shared.interpreter(packageRoot: Self.packageRoot)
        let script = Self.packageRoot.appendingPathComponent("Tests/HeraldServerTests/Python/presence.py").path
        try await withHerald { herald in
            let url = "ws://127.0.0.1:\(herald.port)/socket"
            let token = try await herald.token()
            let members = try ["alice", "bob", "carol"].map { try LineProcess([python, script, url, token, $0]) }
            var outputs = members.map { $0.outputLines.makeAsyncIterator() }
            /// Reads a member's sync lines until its presence keys equal `expected`.
            func waitFor(_ index: Int, _ expected: [String]) async -> Bool {
                while let line = await outputs[index].next() {
                    if (try? JSONValue.parse(line)) == .array(expected.map { .string($0) }) { return true }
                }
                return false
            }
            for index in 0..<3 { #expect(await waitFor(index, ["alice", "bob", "carol"])) }
            members[2].kill()
            #expect(await waitFor(0, ["alice", "bob"]))
            #expect(await waitFor(1, ["alice", "bob"]))
            for member in members { member.kill() }
        }
    }
}
