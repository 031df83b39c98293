import ArgumentParser

/// S1 (issue 6): Supabase's broadcast benchmark shape, scaled down. N users, each one socket in a 1-member echo room
/// (its messages come back to it) and a 6-member group room, publishing 2 messages/s into each; steps of N, each with
/// a fresh set of sockets.
struct S1Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s1",
        abstract: "S1: users in an echo room and a 6-member group room, 2 messages/s into each, stepped user counts."
    )

    @OptionGroup var harness: HarnessOptions
    @OptionGroup var targets: TargetOptions

    @Option(help: "Users (sockets) of each step, comma-separated.")
    var users = "1000,4000,8000,16000"

    @Option(help: "Members of each group room.")
    var groupSize = 6

    @Option(help: "Messages per second each user publishes into each of its two rooms.")
    var messagesPerRoom: Double = 2

    @Option(help: "Seconds of load in each step.")
    var stepSeconds: Double = 10

    @Option(help: "Bytes of each message's payload.")
    var payloadBytes = 200

    func run() async throws {
        let scenario = S1Scenario(
            users: try parseCounts(users),
            groupSize: groupSize,
            messagesPerRoom: messagesPerRoom,
            stepSeconds: stepSeconds,
            payloadBytes: payloadBytes,
            connectConcurrency: harness.connectConcurrency
        )
        try await targets.run { try await scenario.run(harness.settings(target: $0)) }
    }
}

struct S1Scenario {
    var users: [Int]
    var groupSize: Int
    var messagesPerRoom: Double
    var stepSeconds: Double
    var payloadBytes: Int
    var connectConcurrency: Int
    var quietSeconds: Double = 2

    struct Step: Codable {
        var users: Int
        var connect: ConnectSummary
        var load: LoadStepSummary
    }

    struct Summary: ScenarioSummary, Codable {
        var scenario = "s1"
        var target: Target
        var run: RunInfo
        var groupSize: Int
        var messagesPerSecondPerUserPerRoom: Double
        var payloadBytes: Int
        var steps: [Step]

        var figures: [String: Double] {
            var figures: [String: Double] = [:]
            for step in steps {
                let prefix = "users_\(step.users)."
                figures[prefix + "deliveries_per_second"] = step.load.deliveriesPerSecond
                figures[prefix + "server_cpu_us_per_delivery"] = step.load.serverCPUMicrosecondsPerDelivery
                figures[prefix + "latency_p50_ms"] = step.load.latencyMs?.p50
                figures[prefix + "latency_p99_ms"] = step.load.latencyMs?.p99
                figures[prefix + "server_rss_bytes_per_socket"] = step.connect.serverRSSBytesPerSocket.map(Double.init)
            }
            return figures
        }
    }

    /// Every member of a group publishes, into its group room and its echo room in turn.
    func group(users: Int) -> SocketGroup {
        SocketGroup(name: "s1u\(users)", members: users, roomSize: groupSize, presence: false, echo: true)
    }

    func load(users: Int) -> BroadcastStep {
        BroadcastStep(
            seconds: stepSeconds,
            messagesPerSecond: Double(users) * 2 * messagesPerRoom,
            publishersPerRoom: groupSize,
            payloadBytes: payloadBytes,
            binary: false,
            quietSeconds: quietSeconds
        )
    }

    var phases: [Phase] {
        users.flatMap { users -> [Phase] in
            [.connect(group(users: users), join: true, concurrency: connectConcurrency), .idle(seconds: 2), .broadcast(load(users: users)), .disconnect, .idle(seconds: 2)]
        }
    }

    func run(_ settings: BenchRun.Settings) async throws -> Summary {
        let loadBefore = RunInfo.loadAverage()
        let result = try await BenchRun.run(settings, maxSockets: users.max() ?? 0, phases: phases)
        return Summary(
            target: settings.target,
            run: RunInfo(settings, result, loadAverageBefore: loadBefore),
            groupSize: groupSize,
            messagesPerSecondPerUserPerRoom: messagesPerRoom,
            payloadBytes: payloadBytes,
            steps: Self.steps(result.outcomes, baseline: result.serverBaseline)
        )
    }

    /// Each connect with the broadcast step after it.
    static func steps(_ outcomes: some Sequence<BenchRun.Outcome>, baseline: ProcessSample) -> [Step] {
        var steps: [Step] = []
        var connect: (BenchRun.Outcome, SocketGroup)?
        for outcome in outcomes {
            switch outcome.phase {
            case .connect(let group, _, _):
                connect = (outcome, group)
            case .broadcast(let step):
                guard let (connectOutcome, group) = connect else { continue }
                steps.append(
                    Step(
                        users: group.members,
                        connect: ConnectSummary(connectOutcome, sockets: group.members, baseline: baseline),
                        load: .broadcast(outcome, step)
                    )
                )
            default:
                continue
            }
        }
        return steps
    }
}
