import ArgumentParser

/// A few hundred sockets for a few seconds through every phase kind, for CI: it checks the harness works
/// (sockets join, frames are counted, latencies recorded, the storm converges, S1's rooms and S2's timed messages
/// work on Herald and on the peers), never a speed.
struct SmokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smoke",
        abstract: "A tiny run of every phase on Herald, then of S1 and S2's phases on the floor and nchan; prints \"ok\": true when the harness works."
    )

    @OptionGroup var harness: HarnessOptions

    struct Summary: Codable {
        var scenario = "smoke"
        var ok: Bool
        var problems: [String]
        var run: RunInfo
        var connect: ConnectSummary
        var churn: [LoadStepSummary]
        var storm: StormSummary?
        var broadcast: [LoadStepSummary]
        /// S1's and S2's phases on each target that ran them.
        var scenarios: [TargetSmoke]
        /// Targets not run, and why (nchan when nginx is not installed).
        var skipped: [String: String]
    }

    /// A tiny S1 step and S2's single messages to one room, on one target.
    struct TargetSmoke: Codable {
        var target: Target
        var s1: [S1Scenario.Step]
        var burst: BurstSummary
        var heartbeatReplies: Int
    }

    func run() async throws {
        var settings = harness.settings()
        // Two worker processes even at this size, so the aggregation of their reports is exercised.
        settings.socketsPerWorker = min(settings.socketsPerWorker, 60)
        settings.heartbeatSeconds = 2
        let summary = try await Self.run(settings, connectConcurrency: harness.connectConcurrency)
        print(try SummaryOutput.line(summary))
        if !summary.ok { throw ExitCode.failure }
    }

    static func run(_ settings: BenchRun.Settings, connectConcurrency: Int) async throws -> Summary {
        let rooms = SocketGroup(name: "room", members: 120, roomSize: 40, presence: true)
        let storm = StormStep(group: SocketGroup(name: "storm", members: 100, roomSize: 100, presence: true), timeoutSeconds: 10)
        let channels = SocketGroup(name: "bcast", members: 100, roomSize: 50, presence: false)
        let churn = ChurnStep(seconds: 2, rejoinsPerSecond: 20, updatesPerSecond: 10, quietSeconds: Self.quietSeconds)
        let text = BroadcastStep(seconds: 1.5, messagesPerSecond: 40, publishersPerRoom: 1, payloadBytes: 200, binary: false, quietSeconds: Self.quietSeconds)
        var binary = text
        binary.binary = true
        let heraldPhases: [Phase] = [
            .connect(rooms, join: true, concurrency: connectConcurrency), .idle(seconds: 0.5), .churn(churn), .disconnect,
            .connect(storm.group, join: false, concurrency: connectConcurrency), .storm(storm), .disconnect,
            .connect(channels, join: true, concurrency: connectConcurrency), .broadcast(text), .broadcast(binary), .disconnect,
        ]
        let loadBefore = RunInfo.loadAverage()
        let scenarioPhases = Self.scenarioPhases(connectConcurrency: connectConcurrency)
        let result = try await BenchRun.run(settings, maxSockets: 120, phases: heraldPhases + scenarioPhases)
        let outcomes = result.outcomes
        let churnSummaries = [LoadStepSummary.churn(outcomes[2], churn)]
        let stormSummary = StormSummary(outcomes[5], members: storm.group.members)
        let broadcasts = [LoadStepSummary.broadcast(outcomes[8], text), .broadcast(outcomes[9], binary)]
        let connects = [outcomes[0], outcomes[4], outcomes[7]]

        var problems: [String] = []
        if connects.contains(where: { $0.report.failed > 0 }) { problems.append("some sockets failed to connect or join") }
        if churnSummaries.contains(where: { $0.deliveries == 0 || $0.latencyMs == nil }) {
            problems.append("churn produced no presence diffs or no latencies")
        }
        if stormSummary.converged != storm.group.members { problems.append("the storm did not converge on every member") }
        if broadcasts.contains(where: { $0.lostDeliveries != 0 || $0.latencyMs == nil }) { problems.append("broadcasts were lost or not timed") }
        let errors = outcomes.prefix(heraldPhases.count).map(\.report.errorCount).reduce(0, +)
        if errors > 0 { problems.append("\(errors) error replies, system errors, server closes or unreadable frames") }

        var scenarios = [Self.targetSmoke(.herald, outcomes.dropFirst(heraldPhases.count), baseline: result.serverBaseline, problems: &problems)]
        var skipped: [String: String] = [:]
        for peer in [Target.floor, .nchan] {
            if peer == .nchan, let reason = NchanServer.unavailableReason() {
                progress("smoke: skipping nchan: \(reason)")
                skipped[peer.rawValue] = reason
                continue
            }
            var peerSettings = settings
            peerSettings.target = peer
            let peerResult = try await BenchRun.run(peerSettings, maxSockets: 120, phases: scenarioPhases)
            scenarios.append(Self.targetSmoke(peer, peerResult.outcomes[...], baseline: peerResult.serverBaseline, problems: &problems))
        }

        return Summary(
            ok: problems.isEmpty,
            problems: problems,
            run: RunInfo(settings, result, loadAverageBefore: loadBefore, withLog: !problems.isEmpty),
            connect: ConnectSummary(outcomes[0], sockets: rooms.members, baseline: result.serverBaseline),
            churn: churnSummaries,
            storm: stormSummary,
            broadcast: broadcasts,
            scenarios: scenarios,
            skipped: skipped
        )
    }

    /// How long a step waits for stragglers once nothing arrives: long enough that a loaded machine (the whole test
    /// suite runs beside it) does not turn a late delivery into a lost one.
    static let quietSeconds = 1.5

    /// One S1 step of 100 users (echo rooms and rooms of 6), then three single messages to a room of 100 (S2).
    static func scenarioPhases(connectConcurrency: Int) -> [Phase] {
        let s1 = S1Scenario(users: [100], groupSize: 6, messagesPerRoom: 2, stepSeconds: 1.5, payloadBytes: 200, connectConcurrency: connectConcurrency, quietSeconds: Self.quietSeconds)
        let room = SocketGroup(name: "smokebig", members: 100, roomSize: 100, presence: false)
        let burst = BurstStep(payloadBytes: 200, timeoutSeconds: 5)
        return s1.phases + [.connect(room, join: true, concurrency: connectConcurrency), .burst(burst), .burst(burst), .burst(burst), .disconnect]
    }

    static func targetSmoke(_ target: Target, _ outcomes: ArraySlice<BenchRun.Outcome>, baseline: ProcessSample, problems: inout [String]) -> TargetSmoke {
        let s1 = S1Scenario.steps(outcomes, baseline: baseline)
        let burst = BurstSummary(outcomes.filter { if case .burst = $0.phase { true } else { false } }, members: 100)
        let heartbeats = outcomes.map(\.report.heartbeatReplies).reduce(0, +)
        let name = target.rawValue
        if s1.isEmpty || s1.contains(where: { $0.connect.failed > 0 || $0.load.lostDeliveries != 0 || $0.load.latencyMs == nil }) {
            problems.append("\(name): S1 sockets failed, or its messages were lost or not timed")
        }
        if burst.lostDeliveries != 0 || burst.lastDeliveryMs?.samples != UInt64(burst.messages) {
            problems.append("\(name): single messages to the large room were lost or not timed to the last delivery")
        }
        if heartbeats == 0 { problems.append("\(name): no heartbeat was answered") }
        let errors = outcomes.map(\.report.errorCount).reduce(0, +)
        if errors > 0 { problems.append("\(name): \(errors) error replies, system errors, server closes or unreadable frames") }
        return TargetSmoke(target: target, s1: s1, burst: burst, heartbeatReplies: heartbeats)
    }
}
