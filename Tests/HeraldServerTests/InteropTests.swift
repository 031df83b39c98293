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
            #expect(probe.waitForExit() == 0)
            #expect(received.count == 3)
            for payload in received {
                #expect(payload["data"]?["type"] == "INSERT")
                #expect(payload["data"]?["record"]?["room_id"] == .string(room))
            }
            #expect(received.compactMap { $0["data"]?["record"]?["content"]?.stringValue } == ["message 0", "message 2", "message 4"])
        }
    }
}
