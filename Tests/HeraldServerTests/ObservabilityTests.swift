import Foundation
import HeraldCore
import HeraldPostgres
@testable import HeraldServer
import HeraldTestSupport
import Testing

/// `/healthcheck`, `/api/health` and `/metrics`: the pure decisions first, then real servers.
@Suite struct ObservabilityTests {
    // MARK: Prometheus text

    /// The samples of an exposition by `name{labels}` as printed; records an issue for every invalid line.
    static func samples(_ text: String) -> [String: Double] {
        // One exposition line: a `# HELP`/`# TYPE` comment, or `name{label="value",...} number`.
        let sampleLine = #/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|NaN|[-+]Inf)$/#
        let commentLine = #/^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]*( .*)?$/#

        var samples: [String: Double] = [:]
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            if line.hasPrefix("#") {
                #expect(line.wholeMatch(of: commentLine) != nil, "invalid comment line: \(line)")
                continue
            }
            guard line.wholeMatch(of: sampleLine) != nil, let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("invalid sample line: \(line)")
                continue
            }
            samples[String(line[..<space])] = value
        }
        #expect(text.hasSuffix("\n"))
        return samples
    }

    @Test func metricsCountPerBatchAndRenderValidText() {
        let metrics = ServerMetrics()
        metrics.delivered(.broadcast, count: 3)
        metrics.delivered(.broadcast, count: 2)
        metrics.delivered(.postgresChanges, count: 7)
        metrics.received(event: "phx_join")
        metrics.received(event: "something_new")
        metrics.socketClosed(.slowConsumer)
        metrics.socketRefused(status: 429)
        metrics.sampledOutboundQueue(bytes: 4096)
        let health = HealthReport(
            databaseConnected: true,
            changeSource: ChangeSourceHealth(kind: .replication, state: .streaming, lagBytes: 1234, lagSeconds: 0.25),
            connections: 2
        )
        let text = String(decoding: metrics.exposition(connections: 2, joinedChannels: 5, health: health), as: UTF8.self)
        let samples = Self.samples(text)
        #expect(samples[#"herald_deliveries_total{kind="broadcast"}"#] == 5)
        #expect(samples[#"herald_deliveries_total{kind="postgres_changes"}"#] == 7)
        #expect(samples[#"herald_deliveries_total{kind="presence"}"#] == 0)
        #expect(samples[#"herald_inbound_messages_total{event="phx_join"}"#] == 1)
        #expect(samples[#"herald_inbound_messages_total{event="other"}"#] == 1)
        #expect(samples[#"herald_sockets_closed_total{reason="slow_consumer"}"#] == 1)
        #expect(samples[#"herald_sockets_refused_total{reason="max_connections"}"#] == 1)
        #expect(samples["herald_outbound_queue_bytes"] == 4096)
        #expect(samples["herald_connections"] == 2)
        #expect(samples["herald_joined_channels"] == 5)
        #expect(samples["herald_change_source_streaming"] == 1)
        #expect(samples["herald_change_source_lag_bytes"] == 1234)
        #expect(samples["herald_change_source_lag_seconds"] == 0.25)
        #expect(text.contains("# TYPE herald_deliveries_total counter\n"))
        #expect(text.contains("# TYPE herald_connections gauge\n"))
    }

    // MARK: Health decisions

    @Test func healthIsDegradedWhenTheListenerOrTheSourceIsDown() {
        let trigger = HealthMonitor(changeSourceKind: .trigger)
        #expect(trigger.report(connections: 0).httpStatus == 503)
        trigger.listener(.streaming)
        #expect(trigger.report(connections: 3).json.jsonString == #"{"status":"ok","database":{"connected":true},"change_source":{"kind":"trigger","status":"streaming","lag_bytes":null,"lag_seconds":null},"connections":3}"#)
        trigger.listener(.reconnecting)
        let down = trigger.report(connections: 3)
        #expect(down.httpStatus == 503 && down.json["status"] == "degraded" && down.json["database"]?["connected"] == false)

        let replication = HealthMonitor(changeSourceKind: .replication)
        replication.listener(.streaming)
        #expect(replication.report(connections: 0).httpStatus == 503)  // the stream has not started
        replication.replication(.streaming)
        replication.replicated(commitTimestamp: 1_000_000, now: 1_012_345)
        replication.replicationLag(bytes: 56)
        #expect(replication.report(connections: 0).json.jsonString == #"{"status":"ok","database":{"connected":true},"change_source":{"kind":"replication","status":"streaming","lag_bytes":56,"lag_seconds":0.012},"connections":0}"#)
        replication.replication(.reconnecting)
        #expect(replication.report(connections: 0).json["change_source"]?["status"] == "reconnecting")
        #expect(replication.report(connections: 0).httpStatus == 503)
    }

    @Test func lagSecondsAreWrittenAsPlainDecimals() {
        #expect(HealthReport.format(seconds: 0.00001) == "0.000")
        #expect(HealthReport.format(seconds: 0.05) == "0.050")
        #expect(HealthReport.format(seconds: 12.3456) == "12.346")
        #expect(HealthReport.format(seconds: -1) == "0.000")
    }

    @Test func inboundEventsAndRefusalsMapToFixedLabels() {
        #expect(ServerMetrics.InboundEvent(event: "access_token") == .accessToken)
        #expect(ServerMetrics.InboundEvent(event: "PHX_JOIN") == .other)
        #expect(ServerMetrics.RefusalReason(status: 401) == .unauthorized)
        #expect(ServerMetrics.RefusalReason(status: 404) == .badRequest)
    }

    // MARK: A real server

    @Test func healthcheckAnswersOk() async throws {
        try await withHerald { herald in
            let response = try await HTTPProbe.get(port: herald.port, path: "/healthcheck")
            #expect(response.status == 200 && response.body == "ok")
            #expect(response.headers["content-type"]?.hasPrefix("text/plain") == true)
        }
    }

    @Test func apiHealthReportsTheTriggerSourceAndConnections() async throws {
        try await withHerald { herald in
            let socket = try await herald.socket()
            try await socket.joinV2("realtime:health", config: [:])
            let response = try await HTTPProbe.get(port: herald.port, path: "/api/health")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "application/json")
            let body = try JSONValue.parse(Array(response.body.utf8))
            #expect(body["status"] == "ok")
            #expect(body["database"]?["connected"] == true)
            #expect(body["change_source"]?["kind"] == "trigger")
            #expect(body["change_source"]?["status"] == "streaming")
            #expect(body["change_source"]?["lag_bytes"] == .null)
            #expect(body["connections"]?.intValue == 1)
            await socket.close()
        }
    }

    @Test func metricsFollowJoinsBroadcastsAndHeartbeats() async throws {
        try await withHerald { herald in
            let sender = try await herald.socket()
            let listeners = [try await herald.socket(), try await herald.socket()]
            try await sender.joinV2("realtime:metrics", config: ["broadcast": ["self": false]])
            for listener in listeners { try await listener.joinV2("realtime:metrics", config: [:]) }
            try await sender.push("1", "2", "realtime:metrics", "broadcast", ["type": "broadcast", "event": "e", "payload": ["n": 1]])
            for listener in listeners { #expect(try await listener.receive().text.contains(#""broadcast""#)) }
            try await sender.sendText(#"[null,"hb","phoenix","heartbeat",{}]"#)
            #expect(try await sender.receive().text.contains(#""hb""#))
            // An upgrade without a key is refused (401).
            await #expect(throws: TestWebSocket.UpgradeRefused.self) {
                try await TestWebSocket.connect(port: herald.port, target: "/socket/websocket?vsn=2.0.0")
            }

            let response = try await HTTPProbe.get(port: herald.port, path: "/metrics")
            #expect(response.status == 200)
            #expect(response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8")
            let samples = Self.samples(response.body)
            #expect(samples["herald_connections"] == 3)
            #expect(samples["herald_joined_channels"] == 3)
            #expect(samples[#"herald_inbound_messages_total{event="phx_join"}"#] == 3)
            #expect(samples[#"herald_inbound_messages_total{event="broadcast"}"#] == 1)
            #expect(samples[#"herald_inbound_messages_total{event="heartbeat"}"#] == 1)
            #expect(samples[#"herald_deliveries_total{kind="broadcast"}"#] == 2)  // self is off: the two listeners
            #expect(samples[#"herald_deliveries_total{kind="postgres_changes"}"#] == 0)
            #expect(samples[#"herald_sockets_refused_total{reason="unauthorized"}"#] == 1)
            #expect(samples["herald_database_connected"] == 1)
            #expect(samples["herald_change_source_streaming"] == 1)
            for socket in [sender] + listeners { await socket.close() }
        }
    }

    @Test func anIdleSocketIsClosedAndCountedOnce() async throws {
        try await withHerald({ $0.idleTimeoutMilliseconds = 1000 }) { herald in
            let quiet = try await herald.socket()
            #expect(try await quiet.receive(until: { $0.isClose }).last?.closeCode == 1000)
            // Sweeps go on every second while the socket winds down: it is still counted once.
            var samples: [String: Double] = [:]
            for _ in 0..<300 {
                samples = Self.samples(try await HTTPProbe.get(port: herald.port, path: "/metrics").body)
                if samples["herald_connections"] == 0 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            try await Task.sleep(for: .milliseconds(1500))
            samples = Self.samples(try await HTTPProbe.get(port: herald.port, path: "/metrics").body)
            #expect(samples["herald_connections"] == 0)
            #expect(samples[#"herald_sockets_closed_total{reason="idle_timeout"}"#] == 1)
        }
    }

    @Test func replicationSourceReportsItsStateLagAndChanges() async throws {
        let slot = "test_" + UUID().uuidString.prefix(8).lowercased()
        let herald = try await HeraldInstance.start { $0.changeSource = ChangeSourceConfiguration(kind: .replication, slot: slot) }
        do {
            // The stream connects after the server is up: wait until it streams and the lag has been sampled.
            var body = JSONValue.null
            for _ in 0..<300 {
                let response = try await HTTPProbe.get(port: herald.port, path: "/api/health")
                body = try JSONValue.parse(Array(response.body.utf8))
                if response.status == 200, body["change_source"]?["lag_bytes"]?.intValue != nil { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(body["status"] == "ok")
            #expect(body["change_source"]?["kind"] == "replication")
            #expect(body["change_source"]?["status"] == "streaming")
            #expect((body["change_source"]?["lag_bytes"]?.intValue ?? -1) >= 0)

            try await herald.sql("INSERT INTO messages (room_id, sender_id, content) VALUES ($1, $1, 'hi')", ["00000000-0000-0000-0000-0000000000dd"])
            var samples: [String: Double] = [:]
            for _ in 0..<300 {
                samples = Self.samples(try await HTTPProbe.get(port: herald.port, path: "/metrics").body)
                if samples["herald_changes_received_total"] == 1 { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(samples["herald_changes_received_total"] == 1)
            let health = try JSONValue.parse(Array(try await HTTPProbe.get(port: herald.port, path: "/api/health").body.utf8))
            #expect((health["change_source"]?["lag_seconds"]?.doubleValue ?? -1) >= 0)
        } catch {
            await herald.stop()
            throw error
        }
        await herald.stop()
    }
}
