import Foundation

/// Where and how a run happened.
struct RunInfo: Codable {
    var herald: String
    var serverCPU: Int?
    var generatorCPU: Int?
    var generatorProcesses: Int
    /// /proc/loadavg before and after: the machine's cores are shared with other work.
    var loadAverageBefore: String
    var loadAverageAfter: String
    var serverLogTail: String?

    static func loadAverage() -> String {
        ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }
}

extension RunInfo {
    /// A finished run's facts; `loadAverageBefore` was read before it started.
    init(_ settings: BenchRun.Settings, _ result: BenchRun.Result, loadAverageBefore: String, withLog: Bool = false) {
        herald = settings.target == .herald ? settings.herald : settings.target.rawValue
        serverCPU = settings.serverCPU
        generatorCPU = settings.generatorCPU
        generatorProcesses = result.workers
        self.loadAverageBefore = loadAverageBefore
        loadAverageAfter = Self.loadAverage()
        serverLogTail = withLog ? result.serverLogTail : nil
    }
}

/// Opening and joining the sockets, and what they cost the server in memory.
struct ConnectSummary: Codable {
    var sockets: Int
    var ready: Int
    var failed: Int
    var seconds: Double
    var readyPerSecond: Double
    /// Connection start to ready (upgraded, joined, and tracked with presence).
    var readyMs: LatencySummary?
    var serverCPUMs: Double
    var serverRSSKilobytesBaseline: Int
    var serverRSSKilobytes: Int
    /// (RSS after − RSS of the idle server) ÷ ready sockets.
    var serverRSSBytesPerSocket: Int?
    var errors: Int

    init(_ outcome: BenchRun.Outcome, sockets: Int, baseline: ProcessSample) {
        let report = outcome.report
        self.sockets = sockets
        ready = report.ready
        failed = report.failed
        seconds = rounded(outcome.seconds)
        readyPerSecond = rounded(Double(report.ready) / max(outcome.seconds, 1e-9))
        readyMs = report.setup.summary
        serverCPUMs = rounded(Double(outcome.server.cpuMicroseconds) / 1000)
        serverRSSKilobytesBaseline = baseline.residentKilobytes
        serverRSSKilobytes = outcome.serverAfter.residentKilobytes
        serverRSSBytesPerSocket = report.ready > 0 ? (outcome.serverAfter.residentKilobytes - baseline.residentKilobytes) * 1024 / report.ready : nil
        errors = report.errorCount
    }
}

/// Closing every socket, and the server's CPU time for it (the closing phase and the settling after it).
struct DisconnectSummary: Codable {
    var sockets: Int
    /// Until every generator socket saw its connection closed.
    var seconds: Double
    var serverCPUMs: Double

    init(closing: BenchRun.Outcome, settling: BenchRun.Outcome?, sockets: Int) {
        self.sockets = sockets
        seconds = rounded(closing.seconds)
        let cpu = closing.server.cpuMicroseconds + (settling?.server.cpuMicroseconds ?? 0)
        serverCPUMs = rounded(Double(cpu) / 1000)
    }

    /// The first disconnect of `outcomes` and the phase after it.
    init?(_ outcomes: [BenchRun.Outcome], sockets: Int) {
        guard let index = outcomes.firstIndex(where: { $0.phase == .disconnect }) else { return nil }
        self.init(closing: outcomes[index], settling: outcomes.indices.contains(index + 1) ? outcomes[index + 1] : nil, sockets: sockets)
    }
}

/// A load-free phase: what heartbeats alone cost.
struct IdleSummary: Codable {
    var seconds: Double
    var serverCPUPercent: Double
    var serverRunQueueWaitPercent: Double
    var machineCPUPressurePercent: Double?
    var heartbeatReplies: Int

    init(_ outcome: BenchRun.Outcome) {
        seconds = rounded(outcome.seconds)
        machineCPUPressurePercent = outcome.machineCPUPressurePercent.map(rounded)
        serverCPUPercent = rounded(outcome.server.cpuPercent)
        serverRunQueueWaitPercent = rounded(outcome.server.runQueueWaitPercent)
        heartbeatReplies = outcome.report.heartbeatReplies
    }
}

/// One step of offered load (churn or broadcast) and what it produced.
struct LoadStepSummary: Codable {
    var seconds: Double
    var rejoinsPerSecond: Double?
    var updatesPerSecond: Double?
    var messagesPerSecond: Double?
    /// Operations sent (rejoins + updates, or broadcasts) and how many were due but not sent at the end.
    var operations: Int
    var shortfall: Int
    /// Fan-out frames received by the sockets (`presence_diff`, or `broadcast`).
    var deliveries: Int
    /// Deliveries ÷ the time they took: the step, or longer when a backlog kept arriving after the load stopped.
    var deliveriesPerSecond: Double
    /// How long deliveries went on after the load stopped (0 when the server kept up).
    var backlogSeconds: Double
    /// Broadcast: every message should reach the other members of its room.
    var expectedDeliveries: Int?
    var lostDeliveries: Int?
    var stateFrames: Int
    var latencyMs: LatencySummary?
    var serverCPUPercent: Double
    /// Share of the step the server's threads were runnable but waited for a CPU (other work on its core).
    var serverRunQueueWaitPercent: Double
    var serverCPUMicrosecondsPerDelivery: Double?
    var generatorCPUPercent: Double
    var generatorRunQueueWaitPercent: Double
    /// Share of the step during which some task on the machine waited for a CPU (/proc/pressure/cpu): other
    /// work on the shared cores, when high.
    var machineCPUPressurePercent: Double?
    var errors: Int

    init(_ outcome: BenchRun.Outcome, seconds: Double) {
        let report = outcome.report
        self.seconds = seconds
        operations = report.operations
        shortfall = report.shortfall
        deliveries = report.deliveries
        let lastDelivery = report.lastDeliveryAt.map { Double($0 &- outcome.start) / 1e9 } ?? 0
        let deliverySeconds = max(seconds, lastDelivery)
        deliveriesPerSecond = rounded(Double(report.deliveries) / deliverySeconds)
        backlogSeconds = rounded(deliverySeconds - seconds)
        stateFrames = report.stateFrames
        latencyMs = report.latency.summary
        serverCPUPercent = rounded(outcome.server.cpuPercent)
        serverRunQueueWaitPercent = rounded(outcome.server.runQueueWaitPercent)
        serverCPUMicrosecondsPerDelivery = report.deliveries > 0 ? rounded(Double(outcome.server.cpuMicroseconds) / Double(report.deliveries)) : nil
        generatorCPUPercent = rounded(outcome.generatorCPUPercent)
        generatorRunQueueWaitPercent = rounded(outcome.generatorRunQueueWaitPercent)
        machineCPUPressurePercent = outcome.machineCPUPressurePercent.map(rounded)
        errors = report.errorCount
    }

    static func churn(_ outcome: BenchRun.Outcome, _ step: ChurnStep) -> LoadStepSummary {
        var summary = LoadStepSummary(outcome, seconds: step.seconds)
        summary.rejoinsPerSecond = step.rejoinsPerSecond
        summary.updatesPerSecond = step.updatesPerSecond
        return summary
    }

    /// Lost deliveries: what the messages sent should have made (each target's own count per message, see
    /// `Target.deliveries(of:)`) minus what arrived.
    static func broadcast(_ outcome: BenchRun.Outcome, _ step: BroadcastStep) -> LoadStepSummary {
        var summary = LoadStepSummary(outcome, seconds: step.seconds)
        summary.messagesPerSecond = step.messagesPerSecond
        let expected = outcome.report.expectedDeliveries
        summary.expectedDeliveries = expected
        summary.lostDeliveries = max(0, expected - outcome.report.deliveries)
        return summary
    }
}

/// The join storm: N members join one room at once.
struct StormSummary: Codable {
    var members: Int
    var converged: Int
    /// From the first join sent to the last member holding all N members (nil when some never did).
    var convergeMs: Double?
    /// Per member: from the storm's start to holding all N.
    var memberConvergeMs: LatencySummary?
    var diffFrames: Int
    var stateFrames: Int
    /// What one diff per join per member would have been (N²), for comparison with the batched diffs.
    var naiveFrames: Int
    var diffLatencyMs: LatencySummary?
    var serverCPUMs: Double
    var serverRunQueueWaitMs: Double
    var machineCPUPressurePercent: Double?
    var errors: Int

    init(_ outcome: BenchRun.Outcome, members: Int) {
        let report = outcome.report
        self.members = members
        converged = report.converged
        if report.converged == members, let first = report.firstSendAt, let last = report.lastConvergedAt {
            convergeMs = rounded(Double(last - first) / 1e6)
        }
        memberConvergeMs = report.setup.summary
        diffFrames = report.deliveries
        stateFrames = report.stateFrames
        naiveFrames = members * members
        diffLatencyMs = report.latency.summary
        serverCPUMs = rounded(Double(outcome.server.cpuMicroseconds) / 1000)
        serverRunQueueWaitMs = rounded(Double(outcome.server.runQueueWaitMicroseconds) / 1000)
        machineCPUPressurePercent = outcome.machineCPUPressurePercent.map(rounded)
        errors = report.errorCount
    }
}

/// Single messages to one large room, repeated: how long until the last member has each one.
struct BurstSummary: Codable {
    var members: Int
    var messages: Int
    /// Per message: from publishing to the last of its deliveries (only messages that reached every member).
    var lastDeliveryMs: LatencySummary?
    /// Every delivery: publish to receipt.
    var deliveryLatencyMs: LatencySummary?
    var deliveries: Int
    var lostDeliveries: Int
    var serverCPUMicrosecondsPerDelivery: Double?
    var errors: Int

    init(_ outcomes: [BenchRun.Outcome], members: Int) {
        self.members = members
        messages = outcomes.count
        var lastDelivery = LatencyHistogram()
        var latency = LatencyHistogram()
        var expected = 0
        var cpu: UInt64 = 0
        var errors = 0
        deliveries = 0
        for outcome in outcomes {
            let report = outcome.report
            if let sent = report.firstSendAt, let last = report.lastDeliveryAt, report.deliveries >= report.expectedDeliveries {
                lastDelivery.record(from: sent, to: last)
            }
            latency.add(report.latency)
            deliveries += report.deliveries
            expected += report.expectedDeliveries
            cpu += outcome.server.cpuMicroseconds
            errors += report.errorCount
        }
        lastDeliveryMs = lastDelivery.summary
        deliveryLatencyMs = latency.summary
        lostDeliveries = max(0, expected - deliveries)
        serverCPUMicrosecondsPerDelivery = deliveries > 0 ? rounded(Double(cpu) / Double(deliveries)) : nil
        self.errors = errors
    }
}

/// A target from the issues, and whether the run met it.
struct TargetCheck: Codable {
    var name: String
    var target: String
    var measured: Double?
    var met: Bool
}

extension PhaseReport {
    /// Everything that should not happen: error replies, system errors, server closes, unreadable frames.
    var errorCount: Int { errorReplies + systemErrors + serverCloses + unreadableFrames }
}

/// Two decimals are plenty for a summary.
func rounded(_ value: Double) -> Double { (value * 100).rounded() / 100 }

enum SummaryOutput {
    /// The summary as one JSON line, snake_case keys in alphabetical order (stable from run to run).
    static func line(_ summary: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(summary), as: UTF8.self)
    }
}
