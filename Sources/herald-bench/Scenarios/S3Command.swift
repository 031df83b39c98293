import ArgumentParser

/// S3 (issue 6): connection capacity. Steps of N sockets, each joined to one channel of its own and sending a
/// heartbeat every 25 s, held idle for a while: the server's memory per connection, the connect+join rate and what
/// holding them costs.
struct S3Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s3",
        abstract: "S3: open, join and hold stepped numbers of connections; memory per connection, connect rate, idle CPU."
    )

    @OptionGroup var harness: HarnessOptions
    @OptionGroup var targets: TargetOptions

    @Option(help: "Connections of each step, comma-separated (one server process may hold about 19,500 here).")
    var connections = "5000,10000,19000"

    @Option(help: "Seconds each step's connections are held idle.")
    var holdSeconds: Double = 20

    func run() async throws {
        let scenario = S3Scenario(connections: try parseCounts(connections), holdSeconds: holdSeconds, connectConcurrency: harness.connectConcurrency)
        try await targets.run { try await scenario.run(harness.settings(target: $0)) }
    }
}

struct S3Scenario {
    var connections: [Int]
    var holdSeconds: Double
    var connectConcurrency: Int

    struct Step: Codable {
        var connections: Int
        var connect: ConnectSummary
        var hold: IdleSummary
        /// RSS after the hold − RSS of the idle server, per ready socket.
        var serverRSSBytesPerSocketAfterHold: Int?
    }

    struct Summary: ScenarioSummary, Codable {
        var scenario = "s3"
        var target: Target
        var run: RunInfo
        var steps: [Step]

        var figures: [String: Double] {
            var figures: [String: Double] = [:]
            for step in steps {
                let prefix = "connections_\(step.connections)."
                figures[prefix + "server_rss_bytes_per_socket"] = step.serverRSSBytesPerSocketAfterHold.map(Double.init)
                figures[prefix + "connects_per_second"] = step.connect.readyPerSecond
                figures[prefix + "idle_server_cpu_percent"] = step.hold.serverCPUPercent
            }
            return figures
        }
    }

    var phases: [Phase] {
        connections.flatMap { count -> [Phase] in
            let group = SocketGroup(name: "s3c\(count)", members: count, roomSize: 1, presence: false)
            return [.connect(group, join: true, concurrency: connectConcurrency), .idle(seconds: holdSeconds), .disconnect, .idle(seconds: 2)]
        }
    }

    func run(_ settings: BenchRun.Settings) async throws -> Summary {
        let loadBefore = RunInfo.loadAverage()
        let result = try await BenchRun.run(settings, maxSockets: connections.max() ?? 0, phases: phases)
        var steps: [Step] = []
        let outcomes = result.outcomes
        for index in outcomes.indices.dropLast() {
            guard case .connect(let group, _, _) = outcomes[index].phase else { continue }
            let connect = ConnectSummary(outcomes[index], sockets: group.members, baseline: result.serverBaseline)
            let hold = outcomes[index + 1]
            steps.append(
                Step(
                    connections: group.members,
                    connect: connect,
                    hold: IdleSummary(hold),
                    serverRSSBytesPerSocketAfterHold: connect.ready > 0
                        ? (hold.serverAfter.residentKilobytes - result.serverBaseline.residentKilobytes) * 1024 / connect.ready : nil
                )
            )
        }
        return Summary(target: settings.target, run: RunInfo(settings, result, loadAverageBefore: loadBefore), steps: steps)
    }
}
