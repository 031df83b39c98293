import Foundation
import HeraldCore
import HeraldPostgres
import HeraldServer
import HeraldTestSupport
import Synchronization
import Testing

/// `kill -9` of `herald serve --source replication` in the middle of a stream of inserts: the slot still holds
/// the changes of the retention window, the restarted Herald reads them again, and a client that resumes from
/// the last position it saw gets every later row exactly once, in commit order.
@Suite struct ResumeAfterCrashTests {
    static let room = "77777777-7777-7777-7777-777777777777"
    static let rows = 20_000
    static let rowsPerTransaction = 100

    /// A `herald serve` child process whose output is collected, so that the test can wait until it serves.
    final class ServeProcess: Sendable {
        let process: Process
        let port: Int
        private let output = Mutex("")

        init(databaseURL: String, slot: String, secret: String) throws {
            port = try LocalPostgresCluster.freePort()
            process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLineTests.herald)
            process.arguments = [
                "serve", "--database-url", databaseURL, "--host", "127.0.0.1", "--port", String(port), "--jwt-secret", secret,
                "--log-level", "info", "--source", "replication", "--replication-slot", slot,
            ]
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            pipe.fileHandleForReading.readabilityHandler = { [self] handle in
                let data = handle.availableData
                output.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
            try process.run()
        }

        /// Waits for the "herald is serving" line, logged once the replication stream has caught up.
        func waitUntilServing(timeout: Duration = .seconds(90)) async throws {
            let deadline = ContinuousClock.now + timeout
            while ContinuousClock.now < deadline {
                if output.withLock({ $0.contains("herald is serving") }) { return }
                guard process.isRunning else { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw HarnessError("herald serve did not start serving: \(output.withLock { $0 })")
        }

        func kill9() async throws {
            guard process.isRunning else { return }
            kill(process.processIdentifier, SIGKILL)
            let process = self.process
            _ = try await offloaded { process.waitUntilExit() }
        }
    }

    /// The row numbers of the postgres_changes events among `frames`, and the last position.
    static func rows(in frame: TestWebSocket.Frame) throws -> (row: Int, position: String)? {
        guard frame.isText else { return nil }
        let message = try JSONValue.parse(frame.payload)
        guard message.arrayValue?[3] == "postgres_changes", let data = message.arrayValue?[4]["data"],
            let row = data["record"]?["content"]?.stringValue.flatMap({ Int($0) }), let position = data["position"]?.stringValue
        else { return nil }
        return (row, position)
    }

    /// Where `rows` stops being 1, 2, 3, …: the index and the row found there.
    static func firstOutOfSequence(_ rows: [Int]) -> (index: Int, row: Int)? {
        rows.indices.first { rows[$0] != $0 + 1 }.map { ($0, rows[$0]) }
    }

    @Test func aClientResumingAfterAKilledHeraldGetsEveryRowExactlyOnceInOrder() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let slot = "test_" + UUID().uuidString.prefix(8).lowercased()
        let secret = String(repeating: "c", count: 48)
        let token = try await TokenIssuer.sign(TokenIssuer.claims(role: "anon", subject: nil, expiresIn: 3600, now: Int64(Date().timeIntervalSince1970)), secret: secret)
        let binding: JSONValue = ["event": "INSERT", "schema": "public", "table": "messages"]

        let first = try ServeProcess(databaseURL: url, slot: slot, secret: secret)
        var second: ServeProcess?
        do {
            try await first.waitUntilServing()
            let socket = try await TestWebSocket.connect(port: first.port, target: "/socket/websocket?apikey=\(token)&vsn=2.0.0")
            try await socket.joinV2("realtime:crash", config: ["postgres_changes": [binding]])

            // The writer does not depend on Herald: its rows keep committing across the crash.
            let writer = Task {
                let database = PostgresClient(databaseURL: url, applicationName: "herald-tests-writer")
                defer { database.close() }
                for start in stride(from: 1, through: Self.rows, by: Self.rowsPerTransaction) {
                    _ = try await database.query(
                        "INSERT INTO messages (room_id, sender_id, content) SELECT $1, $1, s.n::text FROM generate_series($2::int, $3::int) AS s(n) ORDER BY s.n",
                        [Self.room, String(start), String(start + Self.rowsPerTransaction - 1)]
                    )
                }
            }

            var received: [Int] = []
            var last = ""
            while received.count < 3_000 {
                guard let change = try Self.rows(in: try await socket.receive()) else { continue }
                received.append(change.row)
                last = change.position
            }
            try await first.kill9()
            // Frames already on their way before the kill still count as seen.
            while let frame = try? await socket.receive(timeout: .seconds(5)), !frame.isClose {
                guard let change = try Self.rows(in: frame) else { continue }
                received.append(change.row)
                last = change.position
            }
            #expect(Self.firstOutOfSequence(received) == nil, "before the crash")

            let restarted = try ServeProcess(databaseURL: url, slot: slot, secret: secret)
            second = restarted
            try await restarted.waitUntilServing()
            let again = try await TestWebSocket.connect(port: restarted.port, target: "/socket/websocket?apikey=\(token)&vsn=2.0.0")
            let (_, system) = try await again.joinV2("realtime:crash", config: ["postgres_changes": [binding], "postgres_changes_resume": .string(last)])
            #expect(system?.arrayValue?[4]["status"] == "ok")
            let resumedFrom = received.count
            // Heartbeats keep the socket from being closed as idle on a slow machine.
            let heartbeats = Task {
                while (try? await Task.sleep(for: .seconds(10))) != nil {
                    try? await again.push(nil, "hb", "phoenix", "heartbeat", [:])
                }
            }
            defer { heartbeats.cancel() }
            while received.count < Self.rows {
                let frame = try await again.receive(timeout: .seconds(60))
                guard let change = try Self.rows(in: frame) else { continue }
                #expect(change.position > last)
                received.append(change.row)
                last = change.position
            }
            try await writer.value
            #expect(received.count == Self.rows)
            #expect(Self.firstOutOfSequence(received) == nil, "resumed after row \(resumedFrom)")
            // Nothing more: no repeat follows.
            let more = try? await again.receive(until: { (try? Self.rows(in: $0)) != nil }, timeout: .seconds(2))
            #expect(more == nil)
        } catch {
            try? await first.kill9()
            try? await second?.kill9()
            throw error
        }
        try await second?.kill9()
        try await dropReplicationSlot(slot, databaseURL: url)
    }
}
