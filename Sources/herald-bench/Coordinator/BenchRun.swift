import Foundation

/// One benchmark run: the server under test, the worker processes, and the phases run in lockstep, with the
/// server's CPU time and RSS read at the start and end of every phase.
struct BenchRun {
    struct Settings {
        /// The server measured, and where its programs are.
        var target = Target.herald
        var herald: String
        /// nginx's configuration template (nil: `Benchmarks/nchan/nginx.conf.template` found above the executable).
        var nchanTemplate: String?
        /// Cores for the server and for the generator; nil runs them unpinned.
        var serverCPU: Int?
        var generatorCPU: Int?
        /// The core of the change scenarios' PostgreSQL and writers; nil: not pinned.
        var databaseCPU: Int? = nil
        /// The most sockets one worker process opens (every process here may hold 20,000 files).
        var socketsPerWorker: Int
        /// The whole run is abandoned after this long.
        var timeoutSeconds: Double
        /// Where to write `perf record` profiles of the server, one per phase but the idle ones
        /// (`<prefix>-<n>-<kind>.data`).
        var perfPrefix: String?
        /// Every socket sends a heartbeat this often (realtime-js and supabase-swift: 25 s).
        var heartbeatSeconds = 25
    }

    /// A phase as every worker saw it, merged, with the server's use of CPU and memory during it.
    struct Outcome {
        var phase: Phase
        var report: PhaseReport
        /// Monotonic ns when the phase started and when the last report arrived.
        var start: UInt64
        var end: UInt64
        var serverBefore: ProcessSample
        var serverAfter: ProcessSample
        /// Growth of the machine's CPU pressure stall time during the phase, microseconds.
        var machineStallMicroseconds: UInt64?

        var seconds: Double { Double(end - start) / 1e9 }
        var server: ProcessUsage { ProcessUsage(from: serverBefore, to: serverAfter) }
        var generatorCPUPercent: Double { percent(report.generatorCPUMicroseconds) }
        var generatorRunQueueWaitPercent: Double { percent(report.generatorRunQueueWaitMicroseconds) }
        /// Share of the phase during which some runnable task on the machine waited for a CPU.
        var machineCPUPressurePercent: Double? { machineStallMicroseconds.map(percent) }

        private func percent(_ microseconds: UInt64) -> Double { seconds > 0 ? Double(microseconds) / (seconds * 1e4) : 0 }
    }

    struct Result {
        var workers: Int
        /// The server right after it started listening (no sockets).
        var serverBaseline: ProcessSample
        var outcomes: [Outcome]
        var serverLogTail: String
    }

    /// Runs `phases` with enough workers for `maxSockets` open at once. A phase for which `shouldRun` (given the
    /// outcomes so far) says false is skipped and has no outcome.
    static func run(
        _ settings: Settings,
        maxSockets: Int,
        phases: [Phase],
        shouldRun: (Phase, [Outcome]) -> Bool = { _, _ in true }
    ) async throws -> Result {
        let server = try await settings.target.start(settings)
        defer { server.stop() }
        let workerCount = max(1, (maxSockets + settings.socketsPerWorker - 1) / settings.socketsPerWorker)
        let plans = (0..<workerCount).map { worker in
            WorkerPlan(
                worker: worker,
                workers: workerCount,
                target: settings.target,
                host: "127.0.0.1",
                port: server.port,
                token: server.token,
                // One source address per worker: each has its own ~28k ephemeral ports.
                sourceAddress: "127.0.0.\(2 + worker % 250)",
                heartbeatSeconds: settings.heartbeatSeconds,
                phases: phases
            )
        }
        let pool = try await WorkerPool.start(plans: plans, cpu: settings.generatorCPU)
        let workers = pool.handles
        defer { workers.stop() }
        let interruption = Interruption {
            workers.stop()
            server.stop()
        }
        defer { interruption.cancel() }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(settings.timeoutSeconds))
            progress("timed out after \(Int(settings.timeoutSeconds)) s: stopping the workers")
            workers.stop()
        }
        defer { watchdog.cancel() }

        let baseline = try server.sample()
        var outcomes: [Outcome] = []
        let decoder = JSONDecoder()
        for (number, phase) in phases.enumerated() {
            _ = try await pool.collect("ready")
            guard shouldRun(phase, outcomes) else {
                pool.skip()
                continue
            }
            progress("\(settings.target.rawValue): " + describe(phase))
            var profiler: Process?
            if let prefix = settings.perfPrefix, !phase.isIdle {
                profiler = try await Self.startProfiler(pid: server.pid, output: "\(prefix)-\(number)-\(phase.kind).data", cpu: settings.generatorCPU)
            }
            defer { profiler.map(Self.stopProfiler) }
            // A little ahead, so every worker has read its `go` before the instant comes.
            let start = Monotonic.nanoseconds() + 100_000_000
            pool.go(at: start)
            try await Monotonic.sleep(until: start)
            let before = try server.sample()
            let stalledBefore = CPUPressure.stalledMicroseconds()
            let reports = try await pool.collect("report").map { try decoder.decode(PhaseReport.self, from: Data($0.utf8)) }
            let after = try server.sample()
            let stalledAfter = CPUPressure.stalledMicroseconds()
            let stalled = stalledBefore.flatMap { before in stalledAfter.map { $0 &- before } }
            outcomes.append(
                Outcome(
                    phase: phase,
                    report: .merged(reports),
                    start: start,
                    end: after.at,
                    serverBefore: before,
                    serverAfter: after,
                    machineStallMicroseconds: stalled
                )
            )
        }
        return Result(workers: workerCount, serverBaseline: baseline, outcomes: outcomes, serverLogTail: String(server.log.suffix(1_000)))
    }

    /// `perf record` attached to the server, on the generator's core so the server's core stays its own.
    private static func startProfiler(pid: Int32, output: String, cpu: Int?) async throws -> Process {
        let perf = Subprocess.make("/usr/bin/perf", ["record", "-e", "cpu-clock", "-F", "499", "-g", "-p", String(pid), "-o", output], cpu: cpu)
        perf.standardOutput = FileHandle.standardError
        perf.standardError = FileHandle.standardError
        try await Subprocess.launch(perf)
        return perf
    }

    private static func stopProfiler(_ perf: Process) {
        perf.interrupt()
        Subprocess.wait(for: perf, timeout: 30)
    }

    private static func describe(_ phase: Phase) -> String {
        switch phase {
        case .connect(let group, let join, _):
            "connecting \(group.members) sockets (\(group.rooms) rooms of \(group.roomSize))\(join ? " and joining" : "")"
        case .idle(let seconds): "settling for \(seconds) s"
        case .churn(let step): "churn: \(step.rejoinsPerSecond) rejoins/s + \(step.updatesPerSecond) track updates/s for \(step.seconds) s"
        case .broadcast(let step): "broadcast: \(step.messagesPerSecond) messages/s for \(step.seconds) s"
        case .storm(let step): "join storm: \(step.group.members) members into one room"
        case .burst: "one message to the first room"
        case .disconnect: "closing the sockets"
        case .listen(let seconds, _): "listening for \(seconds) s"
        }
    }
}
