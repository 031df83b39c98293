import ArgumentParser

/// A few hundred sockets for a few seconds through every phase kind, for CI: it checks the harness works
/// (sockets join, frames are counted, latencies recorded, the storm converges), never a speed.
struct SmokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "smoke",
        abstract: "A tiny run of every phase; prints the summary with \"ok\": true when the harness works."
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
        let churn = ChurnStep(seconds: 2, rejoinsPerSecond: 20, updatesPerSecond: 10, quietSeconds: 0.3)
        let text = BroadcastStep(seconds: 1.5, messagesPerSecond: 40, publishersPerRoom: 1, payloadBytes: 200, binary: false, quietSeconds: 0.3)
        var binary = text
        binary.binary = true
        let phases: [Phase] = [
            .connect(rooms, join: true, concurrency: connectConcurrency), .idle(seconds: 0.5), .churn(churn), .disconnect,
            .connect(storm.group, join: false, concurrency: connectConcurrency), .storm(storm), .disconnect,
            .connect(channels, join: true, concurrency: connectConcurrency), .broadcast(text), .broadcast(binary), .disconnect,
        ]
        let loadBefore = RunInfo.loadAverage()
        let result = try await BenchRun.run(settings, maxSockets: 120, phases: phases)
        let outcomes = result.outcomes
        let churnSummaries = [LoadStepSummary.churn(outcomes[2], churn)]
        let stormSummary = StormSummary(outcomes[5], members: storm.group.members)
        let broadcasts = [LoadStepSummary.broadcast(outcomes[8], text, roomSize: 50), .broadcast(outcomes[9], binary, roomSize: 50)]
        let connects = [outcomes[0], outcomes[4], outcomes[7]]

        var problems: [String] = []
        if connects.contains(where: { $0.report.failed > 0 }) { problems.append("some sockets failed to connect or join") }
        if churnSummaries.contains(where: { $0.deliveries == 0 || $0.latencyMs == nil }) {
            problems.append("churn produced no presence diffs or no latencies")
        }
        if stormSummary.converged != storm.group.members { problems.append("the storm did not converge on every member") }
        if broadcasts.contains(where: { $0.lostDeliveries != 0 || $0.latencyMs == nil }) { problems.append("broadcasts were lost or not timed") }
        if outcomes.allSatisfy({ $0.report.heartbeatReplies == 0 }) { problems.append("no heartbeat was answered") }
        let errors = outcomes.map(\.report.errorCount).reduce(0, +)
        if errors > 0 { problems.append("\(errors) error replies, system errors, server closes or unreadable frames") }

        return Summary(
            ok: problems.isEmpty,
            problems: problems,
            run: RunInfo(
                herald: settings.herald,
                serverCPU: settings.serverCPU,
                generatorCPU: settings.generatorCPU,
                generatorProcesses: result.workers,
                loadAverageBefore: loadBefore,
                loadAverageAfter: RunInfo.loadAverage(),
                serverLogTail: problems.isEmpty ? nil : result.serverLogTail
            ),
            connect: ConnectSummary(outcomes[0], sockets: rooms.members, baseline: result.serverBaseline),
            churn: churnSummaries,
            storm: stormSummary,
            broadcast: broadcasts
        )
    }
}
