/// What one worker counted during one phase; the coordinator merges the workers' reports.
struct PhaseReport: Codable {
    /// Fan-out frames received: `presence_diff` and `broadcast` (text or binary kind 4).
    var deliveries = 0
    /// `presence_state` pushes received (one per join with presence).
    var stateFrames = 0
    var heartbeatReplies = 0
    /// Replies with `"status":"error"` and `system` messages reporting an error.
    var errorReplies = 0
    var systemErrors = 0
    /// Close frames or connections closed by the server.
    var serverCloses = 0
    /// Frames the harness could not read as Phoenix V2 messages.
    var unreadableFrames = 0
    var bytesReceived = 0
    /// Deliveries the messages published in this phase should make (`Target.deliveries(of:)` per message).
    var expectedDeliveries = 0
    /// Operations sent by the load (rejoins, track updates, broadcasts), and how many were due but not sent
    /// when the phase ended (a generator that could not keep up).
    var operations = 0
    var shortfall = 0
    /// Sockets opened and ready (upgraded, joined, tracked), and sockets that failed on the way.
    var ready = 0
    var failed = 0
    /// Storm: members whose presence held every member before the timeout.
    var converged = 0
    /// Delivery latency: broadcast send to receipt, or track to receipt of the diff holding it (other members).
    var latency = LatencyHistogram()
    /// Connect: start of the connection to ready. Storm: first join of the storm to each member's convergence.
    var setup = LatencyHistogram()
    /// When the last fan-out frame arrived (monotonic ns).
    var lastDeliveryAt: UInt64?
    /// Storm: when the first join was sent and when the last member converged; burst: when the message was
    /// published (monotonic ns).
    var firstSendAt: UInt64?
    var lastConvergedAt: UInt64?
    /// CPU time of the worker process during the phase, and time its threads waited for a CPU.
    var generatorCPUMicroseconds: UInt64 = 0
    var generatorRunQueueWaitMicroseconds: UInt64 = 0

    mutating func merge(_ other: PhaseReport) {
        deliveries += other.deliveries
        stateFrames += other.stateFrames
        heartbeatReplies += other.heartbeatReplies
        errorReplies += other.errorReplies
        systemErrors += other.systemErrors
        serverCloses += other.serverCloses
        unreadableFrames += other.unreadableFrames
        bytesReceived += other.bytesReceived
        expectedDeliveries += other.expectedDeliveries
        operations += other.operations
        shortfall += other.shortfall
        ready += other.ready
        failed += other.failed
        converged += other.converged
        latency.add(other.latency)
        setup.add(other.setup)
        firstSendAt = [firstSendAt, other.firstSendAt].compactMap { $0 }.min()
        lastConvergedAt = [lastConvergedAt, other.lastConvergedAt].compactMap { $0 }.max()
        lastDeliveryAt = [lastDeliveryAt, other.lastDeliveryAt].compactMap { $0 }.max()
        generatorCPUMicroseconds += other.generatorCPUMicroseconds
        generatorRunQueueWaitMicroseconds += other.generatorRunQueueWaitMicroseconds
    }

    static func merged(_ reports: [PhaseReport]) -> PhaseReport {
        reports.reduce(into: PhaseReport()) { $0.merge($1) }
    }
}
