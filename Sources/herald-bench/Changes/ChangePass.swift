import Foundation

/// One capture mode measured under the writers' steps: subscribers on worker sockets connected to a fan-out
/// (Herald with one source, the Python peer), or the decode floor with no sockets. Each step runs the writers
/// from one instant while the receivers count; the step lasts the writers' time, then until nothing arrived for
/// `drainSeconds` (at most 30 s more), so a backlog counts in its own step.
struct ChangePass {
    var mode: String
    var database: ChangeDatabase
    var keyGroups: Int
    var teams: Int
    var drainSeconds: Double
    /// Count `realtime.visible_rows` calls per step (RLS).
    var countQueries = false

    /// Connects `group` to `target`, runs `loads`, closes the sockets.
    func run(subscribers group: SocketGroup, target: ListeningTarget, token: String, settings: BenchRun.Settings, connectConcurrency: Int, loads: [RowWriters.Load])
        async throws -> (connect: ConnectOutcome, steps: [ChangeStepSummary])
    {
        let workerCount = max(1, (group.members + settings.socketsPerWorker - 1) / settings.socketsPerWorker)
        let settle = Phase.idle(seconds: 2)
        let phases: [Phase] = [.connect(group, join: true, concurrency: connectConcurrency), settle]
            + loads.map { .listen(seconds: $0.seconds, quietSeconds: drainSeconds) } + [.disconnect]
        let plans = (0..<workerCount).map { worker in
            WorkerPlan(
                worker: worker, workers: workerCount, host: "127.0.0.1", port: target.port, token: token,
                sourceAddress: "127.0.0.\(2 + worker % 250)", heartbeatSeconds: settings.heartbeatSeconds, phases: phases
            )
        }
        let pool = try await WorkerPool.start(plans: plans, cpu: settings.generatorCPU)
        let workers = pool.handles
        defer { workers.stop() }
        let interruption = Interruption {
            workers.stop()
            target.stop()
            database.stop()
        }
        defer { interruption.cancel() }

        var connect = ConnectOutcome(sockets: group.members)
        var steps: [ChangeStepSummary] = []
        let fanOut = Double(group.members) / Double(keyGroups)
        for (number, phase) in phases.enumerated() {
            let load = number >= 2 && number - 2 < loads.count ? loads[number - 2] : nil
            if let load { progress("\(mode): \(Self.describe(load))") }
            _ = try await pool.collect("ready")
            let start = Monotonic.nanoseconds() + 100_000_000
            pool.go(at: start)
            let queriesBefore = countQueries ? try await database.visibleRowsCalls() : (calls: 0, milliseconds: 0)
            let before = target.sample()
            // The writers start a little after the workers' phase, which a worker may begin late: a first row
            // delivered before its phase began would be counted in no step (seen as lost when delivery is fast).
            let writerStart = start + 100_000_000
            let writing = load.map { load in
                Task { await RowWriters.run(load, databaseURL: database.url, table: ChangeDatabase.table, keyGroups: keyGroups, teams: teams, start: writerStart) }
            }
            let report = PhaseReport.merged(try await pool.collect("report").map { try JSONDecoder().decode(PhaseReport.self, from: Data($0.utf8)) })
            let after = target.sample()
            if case .connect = phase {
                connect.ready = report.ready
                connect.failed = report.failed
                connect.seconds = rounded(Double(Monotonic.nanoseconds() - start) / 1e9)
                connect.readyMs = report.setup.summary
            }
            connect.errors += report.errorCount
            guard let load, let writing else { continue }
            let written = await writing.value
            let queries = countQueries ? try await database.visibleRowsCalls() : nil
            let queryDelta = queries.map { (calls: $0.calls - queriesBefore.calls, milliseconds: $0.milliseconds - queriesBefore.milliseconds) }
            steps.append(
                ChangeStepSummary(
                    mode: mode, load: load, written: written, deliveries: report.deliveries, expectedPerRow: fanOut,
                    latency: report.latency, start: writerStart, lastDeliveryAt: report.lastDeliveryAt,
                    serverCPUPercent: cpuPercent(before, after), errors: report.errorCount, queries: queryDelta
                )
            )
        }
        return (connect, steps)
    }

    /// The decode floor under `loads`.
    func run(floor: DecodeFloor, loads: [RowWriters.Load]) async throws -> [ChangeStepSummary] {
        var steps: [ChangeStepSummary] = []
        for load in loads {
            progress("\(mode): \(Self.describe(load))")
            _ = floor.take()
            let start = Monotonic.nanoseconds() + 100_000_000
            let before = floor.sample()
            let written = await RowWriters.run(load, databaseURL: database.url, table: ChangeDatabase.table, keyGroups: keyGroups, teams: teams, start: start)
            try await floor.waitUntilQuiet(seconds: drainSeconds, since: start)
            let after = floor.sample()
            let counts = floor.take()
            steps.append(
                ChangeStepSummary(
                    mode: mode, load: load, written: written, deliveries: counts.rows, expectedPerRow: 1, latency: counts.latency,
                    start: start, lastDeliveryAt: counts.lastRowAt, serverCPUPercent: cpuPercent(before, after), errors: 0, queries: nil
                )
            )
        }
        return steps
    }

    /// The writers alone, no receiver (the table's capture as it is now).
    func run(writersOnly loads: [RowWriters.Load]) async -> [ChangeStepSummary] {
        var steps: [ChangeStepSummary] = []
        for load in loads {
            progress("\(mode): \(Self.describe(load))")
            let start = Monotonic.nanoseconds() + 100_000_000
            let written = await RowWriters.run(load, databaseURL: database.url, table: ChangeDatabase.table, keyGroups: keyGroups, teams: teams, start: start)
            steps.append(
                ChangeStepSummary(
                    mode: mode, load: load, written: written, deliveries: 0, expectedPerRow: 0, latency: LatencyHistogram(),
                    start: start, lastDeliveryAt: nil, serverCPUPercent: nil, errors: 0, queries: nil
                )
            )
        }
        return steps
    }

    static func describe(_ load: RowWriters.Load) -> String {
        let rate = load.rowsPerSecond.map { "\(Int($0)) rows/s" } ?? "as fast as they go"
        return "\(load.connections) writer connections, \(rate), for \(load.seconds) s"
    }
}

/// Connecting the subscribers.
struct ConnectOutcome: Codable {
    var sockets: Int
    var ready = 0
    var failed = 0
    var seconds: Double = 0
    var readyMs: LatencySummary?
    /// Error replies, system errors, server closes and unreadable frames over the whole pass.
    var errors = 0
}

/// One writer step as the receivers saw it.
struct ChangeStepSummary: Codable {
    var mode: String
    var writers: Int
    /// nil: closed loop (writer TPS).
    var offeredRowsPerSecond: Double?
    var writtenRows: Int
    var writerRowsPerSecond: Double
    var writerErrors: Int
    var writerShortfall: Int
    var writerError: String?
    var deliveries: Int
    var expectedDeliveries: Int
    var lostDeliveries: Int
    /// Rows received ÷ (the step, or until the last delivery when later): the rate the receivers sustained.
    var receivedRowsPerSecond: Double
    var latencyMs: LatencySummary?
    var serverCPUPercent: Double?
    var errors: Int
    /// RLS: `realtime.visible_rows` calls during the step, per row written, and their mean duration.
    var visibleRowsCalls: Int?
    var queriesPerChange: Double?
    var visibleRowsMeanMs: Double?

    init(
        mode: String, load: RowWriters.Load, written: RowWriters.Outcome, deliveries: Int, expectedPerRow: Double, latency: LatencyHistogram,
        start: UInt64, lastDeliveryAt: UInt64?, serverCPUPercent: Double?, errors: Int, queries: (calls: Int, milliseconds: Double)?
    ) {
        self.mode = mode
        writers = load.connections
        offeredRowsPerSecond = load.rowsPerSecond
        writtenRows = written.rows
        writerRowsPerSecond = rounded(Double(written.rows) / max(written.seconds, 1e-9))
        writerErrors = written.errors
        writerShortfall = written.shortfall
        writerError = written.firstError
        self.deliveries = deliveries
        expectedDeliveries = Int((Double(written.rows) * expectedPerRow).rounded())
        lostDeliveries = max(0, expectedDeliveries - deliveries)
        let receivingSeconds = max(written.seconds, lastDeliveryAt.map { Double($0 &- start) / 1e9 } ?? 0)
        receivedRowsPerSecond = expectedPerRow > 0 ? rounded(Double(deliveries) / expectedPerRow / max(receivingSeconds, 1e-9)) : 0
        latencyMs = latency.summary
        self.serverCPUPercent = serverCPUPercent.map(rounded)
        self.errors = errors
        visibleRowsCalls = queries?.calls
        queriesPerChange = queries.map { written.rows > 0 ? (Double($0.calls) / Double(written.rows) * 1000).rounded() / 1000 : 0 }
        visibleRowsMeanMs = queries.flatMap { $0.calls > 0 ? rounded($0.milliseconds / Double($0.calls)) : nil }
    }
}

/// CPU use of a process between two samples, in percent of one core.
private func cpuPercent(_ before: ProcessSample?, _ after: ProcessSample?) -> Double? {
    guard let before, let after else { return nil }
    return ProcessUsage(from: before, to: after).cpuPercent
}
