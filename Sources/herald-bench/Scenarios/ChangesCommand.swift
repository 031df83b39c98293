import ArgumentParser
import Foundation

/// Scenario s4 (issue 4): the commit-to-client path of postgres_changes, every capture mode on the same database
/// and the same subscribers in one run: writers alone (no capture), the decode floor (pg_recvlogical), the Python
/// LISTEN/NOTIFY peer, Herald with the trigger source and Herald with the replication source.
struct ChangesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s4",
        abstract: "Commit-to-client latency and rows/s of postgres_changes: Herald's two sources against pg_recvlogical and a Python peer."
    )

    @OptionGroup var harness: HarnessOptions

    @Option(help: "Subscribers (sockets, one postgres_changes INSERT binding each).")
    var subscribers = 1_000

    @Option(help: "Subscriber m filters k=eq.<m % key-groups>, row keys cycle through 0..<key-groups: each row reaches subscribers ÷ key-groups sockets (default: subscribers, i.e. one each).")
    var keyGroups: Int?

    @Option(help: "Writer connection counts, each run at every rate.")
    var writers = "1,8,32"

    @Option(help: "Offered rows/s over all writer connections.")
    var rates = "1000,5000,10000,20000"

    @Option(help: "Seconds each writer step writes.")
    var stepSeconds: Double = 5

    @Option(help: "After a step's writers stop, deliveries count for it until none came for this many seconds (at most 30 s).")
    var drainSeconds: Double = 2

    @Option(help: "Writer connections of the closed-loop step measuring the writers' TPS under each mode.")
    var tpsWriters = 8

    @Option(help: "Seconds of the closed-loop TPS step (0: none).")
    var tpsSeconds: Double = 3

    @Option(help: "Modes to run, in this order: none, floor, python, trigger, replication.")
    var modes = "none,floor,python,trigger,replication"

    @Option(help: "Virtual environment for the Python peer (created with pip install -r Benchmarks/python-peer/requirements.txt when missing).")
    var venv = "/tmp/herald-bench-venv"

    @Option(help: "The Python peer's folder (default: Benchmarks/python-peer of the current directory).")
    var pythonPeer = "Benchmarks/python-peer"

    struct Summary: Codable {
        var scenario = "s4"
        var run: RunInfo
        var subscribers: Int
        var keyGroups: Int
        var rowsReachEach: Int
        var connects: [String: ConnectOutcome]
        var steps: [ChangeStepSummary]
        /// Closed-loop writer rows/s with each mode capturing (and its receivers connected).
        var writerTPS: [String: Double]
        var targets: [TargetCheck]
    }

    func validate() throws {
        let groups = keyGroups ?? subscribers
        guard subscribers > 0, groups > 0, subscribers % groups == 0 else {
            throw ValidationError("--key-groups must divide --subscribers")
        }
    }

    func run() async throws {
        let settings = harness.settings()
        let writerCounts = try parseRates(writers).map { Int($0) }
        let offered = try parseRates(rates)
        let loads = writerCounts.flatMap { connections in
            offered.map { RowWriters.Load(connections: max(1, connections), rowsPerSecond: $0, seconds: stepSeconds) }
        } + (tpsSeconds > 0 ? [RowWriters.Load(connections: tpsWriters, rowsPerSecond: nil, seconds: tpsSeconds)] : [])
        let groups = keyGroups ?? subscribers
        let loadBefore = RunInfo.loadAverage()
        let database = try await ChangeDatabase.start(herald: settings.herald, cpu: settings.databaseCPU)
        defer { database.stop() }
        let secret = (0..<4).map { _ in String(UInt64.random(in: .min ... .max), radix: 16) }.joined(separator: "-")
        let token = try await Subprocess.run(settings.herald, ["token", "--jwt-secret", secret, "--expires-in", "86400"])
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let group = SocketGroup(
            name: "changes", members: subscribers, roomSize: subscribers, presence: false,
            changes: ChangeSubscription(table: ChangeDatabase.table, keyGroups: groups)
        )
        let pass = { (mode: String) in ChangePass(mode: mode, database: database, keyGroups: groups, teams: 5, drainSeconds: drainSeconds) }

        var steps: [ChangeStepSummary] = []
        var connects: [String: ConnectOutcome] = [:]
        var log = ""
        for mode in modes.split(separator: ",").map(String.init) {
            switch mode {
            case "none":
                steps += await pass(mode).run(writersOnly: loads)
            case "floor":
                let floor = try await DecodeFloor.start(database: database, cpu: settings.serverCPU)
                do {
                    steps += try await pass(mode).run(floor: floor, loads: loads)
                } catch {
                    await floor.stop(database: database)
                    throw error
                }
                await floor.stop(database: database)
            case "python":
                let python = try await PythonPeer.interpreter(venv: venv, requirements: pythonPeer + "/requirements.txt")
                let target = try await ListeningTarget.pythonPeer(python: python, script: pythonPeer + "/notify_fanout.py", database: database, cpu: settings.serverCPU)
                defer { target.stop() }
                let outcome = try await pass(mode).run(subscribers: group, target: target, token: token, settings: settings, connectConcurrency: harness.connectConcurrency, loads: loads)
                target.stop()
                // SIGTERM skips the peer's own cleanup.
                try await database.execute("DROP TRIGGER IF EXISTS bench_notify ON public.\(ChangeDatabase.table)")
                connects[mode] = outcome.connect
                steps += outcome.steps
            case "trigger", "replication":
                try await database.execute("SELECT realtime.enable_capture('public.\(ChangeDatabase.table)')")
                let target = try await ListeningTarget.herald(settings.herald, source: mode, database: database, secret: secret, cpu: settings.serverCPU)
                defer { target.stop() }
                let outcome = try await pass(mode).run(subscribers: group, target: target, token: token, settings: settings, connectConcurrency: harness.connectConcurrency, loads: loads)
                log += target.log.suffix(500)
                target.stop()
                connects[mode] = outcome.connect
                steps += outcome.steps
            default:
                throw ValidationError("unknown mode '\(mode)' (none, floor, python, trigger, replication)")
            }
        }
        let summary = Summary(
            run: RunInfo(
                herald: settings.herald, serverCPU: settings.serverCPU, generatorCPU: settings.generatorCPU,
                generatorProcesses: max(1, (subscribers + settings.socketsPerWorker - 1) / settings.socketsPerWorker),
                loadAverageBefore: loadBefore, loadAverageAfter: RunInfo.loadAverage(), serverLogTail: log.isEmpty ? nil : log
            ),
            subscribers: subscribers, keyGroups: groups, rowsReachEach: subscribers / groups,
            connects: connects, steps: steps,
            writerTPS: Dictionary(steps.filter { $0.offeredRowsPerSecond == nil }.map { ($0.mode, $0.writerRowsPerSecond) }, uniquingKeysWith: max),
            targets: Self.targets(steps)
        )
        print(try SummaryOutput.line(summary))
    }

    /// The highest rate a mode's receivers sustained in a step with nothing lost, within the latency bounds given;
    /// `paced`: only open-loop steps (the closed-loop TPS step offers as much as the writers manage).
    static func sustained(_ steps: [ChangeStepSummary], mode: String, paced: Bool = false, p50: Double = .infinity, p99: Double = .infinity) -> Double? {
        steps.filter { step in
            step.mode == mode && (!paced || step.offeredRowsPerSecond != nil) && step.lostDeliveries == 0 && step.writerErrors == 0
                && (step.latencyMs.map { $0.p50 <= p50 && $0.p99 <= p99 } ?? false)
        }.map(\.receivedRowsPerSecond).max()
    }

    static func targets(_ steps: [ChangeStepSummary]) -> [TargetCheck] {
        let withinLatency = sustained(steps, mode: "replication", paced: true, p50: 5, p99: 20)
        let replication = sustained(steps, mode: "replication")
        let floor = sustained(steps, mode: "floor")
        let python = sustained(steps, mode: "python")
        func ratio(_ a: Double?, _ b: Double?) -> Double? { a.flatMap { a in b.map { b in b > 0 ? rounded(a / b) : 0 } } }
        return [
            TargetCheck(name: "replication source: highest paced rows/s with p50 <= 5 ms, p99 <= 20 ms, none lost", target: ">= 20000", measured: withinLatency, met: (withinLatency ?? 0) >= 20_000),
            TargetCheck(name: "replication source: highest rows/s received, none lost (any step)", target: "reported", measured: replication, met: replication != nil),
            TargetCheck(name: "pg_recvlogical: highest rows/s received (any step)", target: "reported", measured: floor, met: floor != nil),
            TargetCheck(name: "Python peer: highest rows/s received, none lost (any step)", target: "reported", measured: python, met: python != nil),
            TargetCheck(name: "replication source ÷ pg_recvlogical rows/s", target: ">= 0.8", measured: ratio(replication, floor), met: (ratio(replication, floor) ?? 0) >= 0.8),
            TargetCheck(name: "replication source ÷ Python peer rows/s", target: ">= 10", measured: ratio(replication, python), met: (ratio(replication, python) ?? 0) >= 10),
        ]
    }
}

/// The Python peer's interpreter: a virtual environment made with pip on first use.
enum PythonPeer {
    static func interpreter(venv: String, requirements: String) async throws -> String {
        let python = venv + "/bin/python"
        if !FileManager.default.isExecutableFile(atPath: python) {
            progress("creating \(venv) for the Python peer (pip install -r \(requirements))")
            _ = try await Subprocess.run("/usr/bin/python3", ["-m", "venv", venv])
        }
        _ = try await Subprocess.run(python, ["-m", "pip", "install", "--quiet", "-r", requirements])
        return python
    }
}
