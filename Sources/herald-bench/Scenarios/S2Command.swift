import ArgumentParser

/// S2 (issue 6): large rooms. Rooms of 100 members with one publisher each at a rising rate, until p99 passes
/// 100 ms; then one room of (by default) 19,000 members and single messages to it, timed to the last delivery.
struct S2Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s2",
        abstract: "S2: rooms of 100 at a rising rate until p99 > 100 ms; time to the last delivery in a 19,000-member room."
    )

    @OptionGroup var harness: HarnessOptions
    @OptionGroup var targets: TargetOptions

    @Option(help: "Rooms of the rising-rate part.")
    var rooms = 100

    @Option(help: "Members per room of the rising-rate part.")
    var members = 100

    @Option(help: "Messages per second over all rooms, for each step, rising; steps after the first with p99 over the limit are skipped.")
    var rates = "500,1000,2000,4000,8000,16000"

    @Option(help: "The p99 latency (ms) a step may reach before the rate stops rising.")
    var p99Limit: Double = 100

    @Option(help: "Seconds of each step.")
    var stepSeconds: Double = 5

    @Option(help: "Members of the large room (0: no large room). The server may hold 20,000 files here.")
    var largeRoom = 19_000

    @Option(help: "Messages sent to the large room, one at a time.")
    var bursts = 20

    @Option(help: "Bytes of each message's payload.")
    var payloadBytes = 200

    func run() async throws {
        let scenario = S2Scenario(
            rooms: SocketGroup(name: "s2r", members: rooms * members, roomSize: members, presence: false),
            rates: try parseRates(rates),
            p99LimitMs: p99Limit,
            stepSeconds: stepSeconds,
            largeRoom: largeRoom > 0 ? SocketGroup(name: "s2big", members: largeRoom, roomSize: largeRoom, presence: false) : nil,
            bursts: bursts,
            payloadBytes: payloadBytes,
            connectConcurrency: harness.connectConcurrency
        )
        try await targets.run { try await scenario.run(harness.settings(target: $0)) }
    }
}

struct S2Scenario {
    var rooms: SocketGroup
    var rates: [Double]
    var p99LimitMs: Double
    var stepSeconds: Double
    var largeRoom: SocketGroup?
    var bursts: Int
    var payloadBytes: Int
    var connectConcurrency: Int
    var quietSeconds: Double = 2
    var burstTimeoutSeconds: Double = 10

    struct Summary: ScenarioSummary, Codable {
        var scenario = "s2"
        var target: Target
        var run: RunInfo
        var rooms: Int
        var membersPerRoom: Int
        var p99LimitMs: Double
        var connect: ConnectSummary
        var steps: [LoadStepSummary]
        /// The highest step with p99 within the limit and nothing lost.
        var withinLimit: LoadStepSummary?
        /// The first step over the limit (nil when none was): deliveries/s there is the saturation rate.
        var saturation: LoadStepSummary?
        var largeRoomConnect: ConnectSummary?
        var largeRoom: BurstSummary?

        var figures: [String: Double] {
            var figures: [String: Double] = [:]
            figures["rooms.max_deliveries_per_second_within_p99_limit"] = withinLimit?.deliveriesPerSecond
            figures["rooms.server_cpu_us_per_delivery_within_p99_limit"] = withinLimit?.serverCPUMicrosecondsPerDelivery
            figures["rooms.saturation_deliveries_per_second"] = saturation?.deliveriesPerSecond
            figures["rooms.server_cpu_us_per_delivery_at_saturation"] = saturation?.serverCPUMicrosecondsPerDelivery
            for step in steps {
                let prefix = "rooms.rate_\(Int(step.messagesPerSecond ?? 0))."
                figures[prefix + "server_cpu_us_per_delivery"] = step.serverCPUMicrosecondsPerDelivery
                figures[prefix + "latency_p99_ms"] = step.latencyMs?.p99
            }
            figures["rooms.server_rss_bytes_per_socket"] = connect.serverRSSBytesPerSocket.map(Double.init)
            if let largeRoom {
                figures["large_room.last_delivery_p50_ms"] = largeRoom.lastDeliveryMs?.p50
                figures["large_room.last_delivery_p99_ms"] = largeRoom.lastDeliveryMs?.p99
                figures["large_room.last_delivery_max_ms"] = largeRoom.lastDeliveryMs?.max
                figures["large_room.server_cpu_us_per_delivery"] = largeRoom.serverCPUMicrosecondsPerDelivery
            }
            figures["large_room.server_rss_bytes_per_socket"] = largeRoomConnect?.serverRSSBytesPerSocket.map(Double.init)
            return figures
        }
    }

    var phases: [Phase] {
        var phases: [Phase] = [.connect(rooms, join: true, concurrency: connectConcurrency), .idle(seconds: 2)]
        phases += rates.map {
            .broadcast(BroadcastStep(seconds: stepSeconds, messagesPerSecond: $0, publishersPerRoom: 1, payloadBytes: payloadBytes, binary: false, quietSeconds: quietSeconds))
        }
        phases += [.disconnect, .idle(seconds: 2)]
        if let largeRoom {
            phases += [.connect(largeRoom, join: true, concurrency: connectConcurrency), .idle(seconds: 2)]
            phases += Array(repeating: .burst(BurstStep(payloadBytes: payloadBytes, timeoutSeconds: burstTimeoutSeconds)), count: bursts)
            phases += [.disconnect]
        }
        return phases
    }

    /// A step over the limit ends the rising rate: later broadcast steps are skipped.
    func withinLimit(_ step: LoadStepSummary) -> Bool {
        (step.latencyMs?.p99 ?? .infinity) <= p99LimitMs && step.lostDeliveries == 0 && step.errors == 0
    }

    func run(_ settings: BenchRun.Settings) async throws -> Summary {
        let loadBefore = RunInfo.loadAverage()
        let result = try await BenchRun.run(settings, maxSockets: max(rooms.members, largeRoom?.members ?? 0), phases: phases) { phase, outcomes in
            guard case .broadcast = phase else { return true }
            return !Self.broadcastSteps(outcomes).contains { !withinLimit($0) }
        }
        let outcomes = result.outcomes
        let steps = Self.broadcastSteps(outcomes)
        let connects = outcomes.filter { if case .connect = $0.phase { true } else { false } }
        let bursts = outcomes.filter { if case .burst = $0.phase { true } else { false } }
        return Summary(
            target: settings.target,
            run: RunInfo(settings, result, loadAverageBefore: loadBefore),
            rooms: rooms.rooms,
            membersPerRoom: rooms.roomSize,
            p99LimitMs: p99LimitMs,
            connect: ConnectSummary(connects[0], sockets: rooms.members, baseline: result.serverBaseline),
            steps: steps,
            withinLimit: steps.last(where: withinLimit),
            saturation: steps.first { !withinLimit($0) },
            largeRoomConnect: largeRoom.flatMap { group in
                connects.count > 1 ? ConnectSummary(connects[1], sockets: group.members, baseline: result.serverBaseline) : nil
            },
            largeRoom: largeRoom.map { BurstSummary(bursts, members: $0.members) }
        )
    }

    static func broadcastSteps(_ outcomes: [BenchRun.Outcome]) -> [LoadStepSummary] {
        outcomes.compactMap { outcome in
            guard case .broadcast(let step) = outcome.phase else { return nil }
            return .broadcast(outcome, step)
        }
    }
}
