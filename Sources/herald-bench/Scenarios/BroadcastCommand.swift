import ArgumentParser

/// The start of issue 6's S1/S2: rooms of N members, publishers at stepped rates, every member receives.
struct BroadcastCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broadcast",
        abstract: "Broadcast fan-out: rooms of members, publishers at stepped rates."
    )

    @OptionGroup var harness: HarnessOptions

    @Option(help: "Rooms.")
    var rooms = 100

    @Option(help: "Members per room (each message reaches the other members: broadcast self is false).")
    var members = 100

    @Option(help: "Publishers per room (members 0..<n of each room).")
    var publishers = 1

    @Option(help: "Messages per second over all rooms, for each step, comma-separated.")
    var rates = "250,500,1000,2000"

    @Option(help: "Seconds of each step.")
    var stepSeconds: Double = 10

    @Option(help: "Bytes of each message's payload.")
    var payloadBytes = 200

    @Flag(help: "Publish V2 binary user broadcasts (kind 3, as realtime-js v2 does) instead of JSON text pushes.")
    var binary = false

    func run() async throws {
        let scenario = BroadcastScenario(
            group: SocketGroup(name: "bcast", members: rooms * members, roomSize: members, presence: false),
            steps: try parseRates(rates).map {
                BroadcastStep(seconds: stepSeconds, messagesPerSecond: $0, publishersPerRoom: publishers, payloadBytes: payloadBytes, binary: binary)
            },
            connectConcurrency: harness.connectConcurrency
        )
        print(try SummaryOutput.line(try await scenario.run(harness.settings())))
    }
}

/// The broadcast scenario's phases and its summary.
struct BroadcastScenario {
    var group: SocketGroup
    var steps: [BroadcastStep]
    var connectConcurrency: Int

    struct Summary: Codable {
        var scenario = "broadcast"
        var run: RunInfo
        var rooms: Int
        var membersPerRoom: Int
        var publishersPerRoom: Int
        var payloadBytes: Int
        var binary: Bool
        var connect: ConnectSummary
        var idle: IdleSummary
        var steps: [LoadStepSummary]
        var disconnect: DisconnectSummary?
        var targets: [TargetCheck]
    }

    var phases: [Phase] {
        [.connect(group, join: true, concurrency: connectConcurrency), .idle(seconds: 2)]
            + steps.map { .broadcast($0) }
            + [.disconnect, .idle(seconds: 2)]
    }

    func run(_ settings: BenchRun.Settings) async throws -> Summary {
        let loadBefore = RunInfo.loadAverage()
        let result = try await BenchRun.run(settings, maxSockets: group.members, phases: phases)
        let steps = result.outcomes.compactMap { outcome -> LoadStepSummary? in
            guard case .broadcast(let step) = outcome.phase else { return nil }
            return .broadcast(outcome, step)
        }
        return Summary(
            run: RunInfo(
                herald: settings.herald,
                serverCPU: settings.serverCPU,
                generatorCPU: settings.generatorCPU,
                generatorProcesses: result.workers,
                loadAverageBefore: loadBefore,
                loadAverageAfter: RunInfo.loadAverage()
            ),
            rooms: group.rooms,
            membersPerRoom: group.roomSize,
            publishersPerRoom: self.steps.first?.publishersPerRoom ?? 0,
            payloadBytes: self.steps.first?.payloadBytes ?? 0,
            binary: self.steps.first?.binary ?? false,
            connect: ConnectSummary(result.outcomes[0], sockets: group.members, baseline: result.serverBaseline),
            idle: IdleSummary(result.outcomes[1]),
            steps: steps,
            disconnect: DisconnectSummary(result.outcomes, sockets: group.members),
            targets: Self.targets(steps)
        )
    }

    /// S1's latency target (p99 ≤ 20 ms) at the highest rate delivered without loss.
    static func targets(_ steps: [LoadStepSummary]) -> [TargetCheck] {
        let lossless = steps.filter { $0.lostDeliveries == 0 && $0.errors == 0 }
        let within = lossless.filter { ($0.latencyMs?.p99 ?? .infinity) <= 20 }
        return [
            TargetCheck(
                name: "broadcast deliveries/s without loss, p99 <= 20 ms (S1 latency target)",
                target: "reported",
                measured: within.map(\.deliveriesPerSecond).max(),
                met: !within.isEmpty
            )
        ]
    }
}
