import HeraldPostgres
import HeraldTestSupport
import Testing

@Suite("NotificationListener")
struct NotificationListenerTests {
    @Test func deliversInOrder() async throws {
        let url = try await TestPostgres.shared.makeDatabase()
        let connection = try PGConnection(url: url)
        try await withListener(url: url, channels: ["one", "two"]) { events in
            _ = try connection.execute("SELECT pg_notify('one', 'a'), pg_notify('two', 'b')")
            try connection.executeScript("BEGIN; SELECT pg_notify('one', 'c'); SELECT pg_notify('two', 'd'); COMMIT;")
            #expect(try await events.next() == .notification(channel: "one", payload: "a"))
            #expect(try await events.next() == .notification(channel: "two", payload: "b"))
            #expect(try await events.next() == .notification(channel: "one", payload: "c"))
            #expect(try await events.next() == .notification(channel: "two", payload: "d"))
        }
    }

    @Test func survivesTerminationOfItsBackend() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = try PGConnection(url: url)
        let room = "00000000-0000-0000-0000-000000000004"
        try await withListener(url: url) { events in
            let killed = try connection.execute(
                "SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity WHERE application_name = 'herald-listener' AND datname = current_database()"
            )
            #expect(killed.map { $0["killed"] } == ["t"])
            guard case .connectionLost(let reason) = try await events.next() else {
                Issue.record("expected .connectionLost")
                return
            }
            #expect(!reason.isEmpty)
            #expect(try await events.next() == .listening(reconnected: true))
            _ = try connection.execute("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'after the outage')", params: [room])
            #expect(try await events.nextPayload().contains("after the outage"))
        }
    }

    @Test func missingParkedPayloadIsReportedAsAnOutage() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let connection = try PGConnection(url: url)
        try await withListener(url: url) { events in
            _ = try connection.execute(#"SELECT pg_notify('herald_changes', '{"ref":999999}')"#)
            guard case .connectionLost(let reason) = try await events.next() else {
                Issue.record("expected .connectionLost")
                return
            }
            #expect(reason.contains("999999"))
            #expect(try await events.next() == .listening(reconnected: true))
        }
    }

    @Test func stopsPromptlyWhileReconnecting() async throws {
        let recorder = EventRecorder()
        let listener = NotificationListener(
            // Port 1: nothing listens there, so connecting fails at once (a "free" port may be taken by a parallel test).
            databaseURL: "postgres://u@127.0.0.1:1/db",
            configuration: .init(channels: ["x"], backoff: .init(initial: .seconds(30), maximum: .seconds(30))),
            onEvent: recorder.record
        )
        let running = Task { await listener.run() }
        guard case .connectionLost = try await recorder.next() else {
            Issue.record("expected .connectionLost")
            return
        }
        let stopRequested = ContinuousClock.now
        listener.stop()
        await running.value
        // Well under the 30 s backoff: stop() interrupted the wait (generous, the machines are shared).
        #expect(ContinuousClock.now - stopRequested < .seconds(20))
        #expect(recorder.pending.isEmpty)
    }

    @Test func cancellationStopsTheListener() async throws {
        let url = try await TestPostgres.shared.makeDatabase()
        let recorder = EventRecorder()
        let listener = NotificationListener(databaseURL: url, configuration: .init(channels: ["x"]), onEvent: recorder.record)
        let running = Task { await listener.run() }
        #expect(try await recorder.next() == .listening(reconnected: false))
        running.cancel()
        await running.value
        // A stopped listener does not run again.
        await listener.run()
        #expect(recorder.pending.isEmpty)
    }
}
