import ArgumentParser

/// S6 (issue 3): rooms × members with join/leave churn and track updates, then a join storm into one room.
struct PresenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "presence",
        abstract: "Presence churn over rooms of members, then a join storm into one room."
    )

    @OptionGroup var harness: HarnessOptions

    @Option(help: "Rooms (the issue's 200 × 100 is 20,000 sockets, over the server's 20,000-file cap: 190 by default).")
    var rooms = 190

    @Option(help: "Members per room.")
    var members = 100

    @Option(help: "Rejoins per second (phx_leave, phx_join, track) of each churn step, comma-separated.")
    var churn = "50,100,200,400"

    @Option(help: "Track updates per second during every churn step.")
    var updates: Double = 100

    @Option(help: "Seconds of each churn step.")
    var stepSeconds: Double = 10

    @Option(help: "Members of the join storm (0: no storm).")
    var storm = 1_000

    @Option(help: "Seconds the storm may take to converge.")
    var stormTimeout: Double = 30

    func run() async throws {
        let scenario = PresenceScenario(
            rooms: SocketGroup(name: "room", members: rooms * members, roomSize: members, presence: true),
            steps: try parseRates(churn).map { ChurnStep(seconds: stepSeconds, rejoinsPerSecond: $0, updatesPerSecond: updates) },
            storm: storm > 0
                ? StormStep(group: SocketGroup(name: "storm", members: storm, roomSize: storm, presence: true), timeoutSeconds: stormTimeout)
                : nil,
            settleSeconds: 3,
            connectConcurrency: harness.connectConcurrency
        )
        let summary = try await scenario.run(harness.settings())
        print(try SummaryOutput.line(summary))
    }
}

/// The presence scenario's phases and its summary.
struct PresenceScenario {
    var rooms: SocketGroup
    var steps: [ChurnStep]
    var storm: StormStep?
    var settleSeconds: Double
    var connectConcurrency: Int

    struct Summary: Codable {
        var scenario = "presence"
        var run: RunInfo
        var rooms: Int
        var membersPerRoom: Int
        var connect: ConnectSummary
        var idle: IdleSummary
        var churn: [LoadStepSummary]
        var disconnect: DisconnectSummary?
        var storm: StormSummary?
        var targets: [TargetCheck]
    }

    var phases: [Phase] {
        var phases: [Phase] = [.connect(rooms, join: true, concurrency: connectConcurrency), .idle(seconds: settleSeconds)]
        phases += steps.map { .churn($0) }
        phases += [.disconnect, .idle(seconds: 2)]
        if let storm {
            // The storm's sockets connect first, so the storm itself is joins only.
            phases += [.connect(storm.group, join: false, concurrency: connectConcurrency), .idle(seconds: 1), .storm(storm), .disconnect]
        }
        return phases
    }

    func run(_ settings: BenchRun.Settings) async throws -> Summary {
        let loadBefore = RunInfo.loadAverage()
        let result = try await BenchRun.run(settings, maxSockets: max(rooms.members, storm?.group.members ?? 0), phases: phases)
        let outcomes = result.outcomes
        let churn = outcomes.compactMap { outcome -> LoadStepSummary? in
            guard case .churn(let step) = outcome.phase else { return nil }
            return .churn(outcome, step)
        }
        let stormSummary = outcomes.compactMap { outcome -> StormSummary? in
            guard case .storm(let step) = outcome.phase else { return nil }
            return StormSummary(outcome, members: step.group.members)
        }.first
        let run = RunInfo(
            herald: settings.herald,
            serverCPU: settings.serverCPU,
            generatorCPU: settings.generatorCPU,
            generatorProcesses: result.workers,
            loadAverageBefore: loadBefore,
            loadAverageAfter: RunInfo.loadAverage()
        )
        return Summary(
            run: run,
            rooms: rooms.rooms,
            membersPerRoom: rooms.roomSize,
            connect: ConnectSummary(outcomes[0], sockets: rooms.members, baseline: result.serverBaseline),
            idle: IdleSummary(outcomes[1]),
            churn: churn,
            disconnect: DisconnectSummary(outcomes, sockets: rooms.members),
            storm: stormSummary,
            targets: Self.targets(churn: churn, storm: stormSummary)
        )
    }

    /// Issue 3's targets: ≥ 20,000 presence deliveries/s on one server core (S6: with diff p99 ≤ 50 ms), and a
    /// 1,000-member storm converged on every member within 1 s.
    static func targets(churn: [LoadStepSummary], storm: StormSummary?) -> [TargetCheck] {
        let clean = churn.filter { ($0.latencyMs?.p99 ?? .infinity) <= 50 && $0.errors == 0 }
        let best = clean.map(\.deliveriesPerSecond).max()
        var targets = [
            TargetCheck(
                name: "presence deliveries/s on one server core (steps with diff p99 <= 50 ms, no errors)",
                target: ">= 20000",
                measured: best,
                met: (best ?? 0) >= 20_000
            )
        ]
        if let storm {
            targets.append(
                TargetCheck(
                    name: "\(storm.members)-member join storm converged on every member",
                    target: "<= 1000 ms",
                    measured: storm.convergeMs,
                    met: storm.convergeMs.map { $0 <= 1_000 } ?? false
                )
            )
        }
        return targets
    }
}
