import NIOCore
import NIOPosix

/// The sockets of one worker process and the load they generate, phase by phase. Everything here runs on the
/// worker's single event loop; the sockets count straight into `report`.
final class LoadWorker {
    let plan: WorkerPlan
    let loop: any EventLoop
    /// Herald's upgrade request is the same for every socket (the peers' name the socket's rooms).
    private let heraldUpgradeRequest: String
    /// What the current phase has counted so far.
    var report = PhaseReport()

    /// The sockets of the group connected last, in a shuffled order (so churn and publishers spread over rooms).
    private var sockets: [BenchSocket] = []
    private var group: SocketGroup?
    private var cursor = 0
    private var random: SplitMix64
    private var heartbeat: RepeatedTask?
    private var heartbeatTick = 0

    private var phase: RunningPhase?
    /// Numbers phases, so a timer set by one phase cannot end a later one.
    private var phaseNumber = 0
    private var connecting: Connecting?
    private var load: Load?
    private var loadTask: RepeatedTask?
    private var stormMembersLeft = 0
    private var burstDeliveriesLeft = 0
    private var socketsLeftToClose = 0
    /// nchan: keep-alive HTTP connections messages are POSTed on, taken in turn.
    private var publishers: [HTTPPublisher] = []
    private var nextPublisher = 0

    private struct RunningPhase {
        let number: Int
        let start: UInt64
        let atStart: ProcessSample?
        let promise: EventLoopPromise<Void>
        var finished = false
    }

    private struct Connecting {
        var queue: [Int]
        var next = 0
        var inFlight = 0
        var left: Int
        let join: Bool
        let concurrency: Int
    }

    private enum Load {
        case churn(rejoins: Pacer, updates: Pacer)
        case broadcast(BroadcastStep, publishers: [BenchSocket], next: Int, pacer: Pacer)
    }

    init(plan: WorkerPlan, loop: any EventLoop) {
        self.plan = plan
        self.loop = loop
        self.heraldUpgradeRequest = WebSocketWire.upgradeRequest(
            host: plan.host,
            port: plan.port,
            target: Target.herald.upgradePath(rooms: [], token: plan.token)
        )
        self.random = SplitMix64(seed: UInt64(plan.worker + 1))
    }

    private var bound: NIOLoopBound<LoadWorker> { NIOLoopBound(self, eventLoop: loop) }

    func upgradeRequest(for socket: BenchSocket) -> String {
        guard plan.target != .herald else { return heraldUpgradeRequest }
        return WebSocketWire.upgradeRequest(host: plan.host, port: plan.port, target: plan.target.upgradePath(rooms: socket.rooms, token: plan.token))
    }

    /// Runs `phase` from `start` (monotonic ns) and returns what it counted.
    func run(_ phase: Phase, at start: UInt64) -> EventLoopFuture<PhaseReport> {
        let promise = loop.makePromise(of: Void.self)
        let bound = self.bound
        loop.scheduleTask(deadline: .uptimeNanoseconds(start)) {
            bound.value.begin(phase, start: start, promise: promise)
        }
        return promise.futureResult.map {
            let worker = bound.value
            if let before = worker.phase?.atStart, let after = ProcessSample.readSelf() {
                let usage = ProcessUsage(from: before, to: after)
                worker.report.generatorCPUMicroseconds = usage.cpuMicroseconds
                worker.report.generatorRunQueueWaitMicroseconds = usage.runQueueWaitMicroseconds
            }
            worker.phase = nil
            return worker.report
        }
    }

    private func begin(_ phase: Phase, start: UInt64, promise: EventLoopPromise<Void>) {
        report = PhaseReport()
        phaseNumber += 1
        self.phase = RunningPhase(number: phaseNumber, start: start, atStart: ProcessSample.readSelf(), promise: promise)
        switch phase {
        case .connect(let group, let join, let concurrency):
            startConnecting(group, join: join, concurrency: concurrency)
        case .idle(let seconds):
            finishPhase(after: seconds)
        case .churn(let step):
            startChurn(step, start: start)
        case .broadcast(let step):
            startBroadcast(step, start: start)
        case .storm(let step):
            startStorm(step, start: start)
        case .burst(let step):
            startBurst(step)
        case .disconnect:
            closeAll()
        case .listen(let seconds, let quietSeconds):
            runLoad(from: start, seconds: seconds, quietSeconds: quietSeconds)
        }
    }

    /// Ends the running phase (once), if it is still phase `number` (by default the running one).
    private func finishPhase(number: Int? = nil) {
        guard var phase, !phase.finished, number == nil || number == phase.number else { return }
        phase.finished = true
        self.phase = phase
        phase.promise.succeed()
    }

    private func finishPhase(after seconds: Double) {
        schedule(in: seconds) { $0.finishPhase(number: $1) }
    }

    /// Runs `body` on the worker `seconds` from now, with the number of the phase running now.
    private func schedule(in seconds: Double, _ body: @escaping @Sendable (LoadWorker, Int) -> Void) {
        let bound = self.bound
        let number = phaseNumber
        loop.scheduleTask(in: .nanoseconds(Int64(seconds * 1e9))) { body(bound.value, number) }
    }

    // MARK: Connecting

    private func startConnecting(_ group: SocketGroup, join: Bool, concurrency: Int) {
        let members = plan.localMembers(of: group)
        self.group = group
        sockets = []
        sockets.reserveCapacity(members.count)
        startHeartbeats()
        if plan.target == .nchan { openPublishers() }
        guard !members.isEmpty else { return finishPhase() }
        connecting = Connecting(queue: members, left: members.count, join: join, concurrency: max(1, concurrency))
        openMore()
    }

    private func openMore() {
        guard var connecting, let group else { return }
        while connecting.inFlight < connecting.concurrency, connecting.next < connecting.queue.count {
            let member = connecting.queue[connecting.next]
            connecting.next += 1
            connecting.inFlight += 1
            open(member, of: group, join: connecting.join)
        }
        self.connecting = connecting
    }

    private func open(_ member: Int, of group: SocketGroup, join: Bool) {
        let socket = BenchSocket(member: member, group: group, worker: self, joinOnOpen: join, now: Monotonic.nanoseconds())
        sockets.append(socket)
        let handler = NIOLoopBound(socket, eventLoop: loop)
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.seconds(10))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
            }
        let source = try? SocketAddress(ipAddress: plan.sourceAddress, port: 0)
        (source.map { bootstrap.bind(to: $0) } ?? bootstrap)
            .connect(host: plan.host, port: plan.port)
            .whenFailure { _ in handler.value.connectFailed() }
        // A server that accepts but never answers the upgrade or the join must not stall the phase.
        loop.scheduleTask(in: .seconds(Self.setupTimeoutSeconds)) { handler.value.setupTimedOut() }
    }

    static let setupTimeoutSeconds: Int64 = 30

    /// A socket finished connecting (and joining): ready, or failed on the way.
    func socketSetUp(_ socket: BenchSocket, ready: Bool) {
        guard var connecting else { return }
        if ready {
            report.ready += 1
            report.setup.record(from: socket.connectStartedAt, to: Monotonic.nanoseconds())
        } else {
            report.failed += 1
        }
        connecting.inFlight -= 1
        connecting.left -= 1
        self.connecting = connecting
        if connecting.left == 0 {
            self.connecting = nil
            sockets.removeAll { !$0.isOpen }
            sockets.shuffle(using: &random)
            cursor = 0
            finishPhase()
        } else {
            openMore()
        }
    }

    /// One heartbeat per socket every `heartbeatSeconds`, spread over the interval by a one-second tick.
    private func startHeartbeats() {
        guard heartbeat == nil else { return }
        let bound = self.bound
        heartbeat = loop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let worker = bound.value
            let interval = max(1, worker.plan.heartbeatSeconds)
            worker.heartbeatTick += 1
            let slot = worker.heartbeatTick % interval
            for index in stride(from: slot, to: worker.sockets.count, by: interval) {
                worker.sockets[index].heartbeat()
            }
        }
    }

    // MARK: Load

    private func startChurn(_ step: ChurnStep, start: UInt64) {
        guard let group else { return finishPhase() }
        let local = plan.localMembers(of: group).count
        load = .churn(
            rejoins: Pacer(start: start, rate: WorkerPlan.share(of: step.rejoinsPerSecond, local: local, total: group.members)),
            updates: Pacer(start: start, rate: WorkerPlan.share(of: step.updatesPerSecond, local: local, total: group.members))
        )
        runLoad(from: start, seconds: step.seconds, quietSeconds: step.quietSeconds)
    }

    private func startBroadcast(_ step: BroadcastStep, start: UInt64) {
        guard let group else { return finishPhase() }
        let publishers = sockets.filter { step.publishes($0.member, roomSize: group.roomSize) }
        let allPublishers = (0..<group.members).count(where: { step.publishes($0, roomSize: group.roomSize) })
        let rate = WorkerPlan.share(of: step.messagesPerSecond, local: publishers.count, total: allPublishers)
        load = .broadcast(step, publishers: publishers, next: 0, pacer: Pacer(start: start, rate: rate))
        runLoad(from: start, seconds: step.seconds, quietSeconds: step.quietSeconds)
    }

    func delivered(at now: UInt64) {
        report.deliveries += 1
        report.lastDeliveryAt = now
        if burstDeliveriesLeft > 0 {
            burstDeliveriesLeft -= 1
            if burstDeliveriesLeft == 0 { finishPhase() }
        }
    }

    /// Ticks every millisecond until `seconds` have passed, then waits until no frame has arrived for
    /// `quietSeconds` (at most `maxDrainSeconds`), so a backlog is counted in this step and not the next.
    private func runLoad(from start: UInt64, seconds: Double, quietSeconds: Double) {
        let end = start + UInt64(seconds * 1e9)
        let bound = self.bound
        loadTask = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in
            bound.value.loadTick(now: Monotonic.nanoseconds())
        }
        loop.scheduleTask(deadline: .uptimeNanoseconds(end)) {
            let worker = bound.value
            worker.loadTask?.cancel()
            worker.loadTask = nil
            // The operations due exactly at the end, which the last tick came too early for.
            worker.loadTick(now: end)
            worker.report.shortfall = worker.loadShortfall(at: end)
            worker.load = nil
            worker.finishWhenQuiet(quietSeconds: quietSeconds, deadline: end + UInt64(Self.maxDrainSeconds * 1e9))
        }
    }

    static let maxDrainSeconds: Double = 30

    private func finishWhenQuiet(quietSeconds: Double, deadline: UInt64) {
        let now = Monotonic.nanoseconds()
        let quietSince = max(report.lastDeliveryAt ?? 0, phase?.start ?? 0)
        if now >= deadline || now >= quietSince + UInt64(quietSeconds * 1e9) { return finishPhase() }
        schedule(in: 0.05) { worker, number in
            guard number == worker.phaseNumber else { return }
            worker.finishWhenQuiet(quietSeconds: quietSeconds, deadline: deadline)
        }
    }

    private func loadTick(now: UInt64) {
        switch load {
        case .churn(var rejoins, var updates):
            for _ in 0..<rejoins.due(at: now) { nextSocket()?.rejoin(at: now) }
            for _ in 0..<updates.due(at: now) { nextSocket()?.retrack(at: now) }
            report.operations = rejoins.issued + updates.issued
            load = .churn(rejoins: rejoins, updates: updates)
        case .broadcast(let step, let publishers, var next, var pacer):
            guard !publishers.isEmpty else { return }
            for _ in 0..<pacer.due(at: now) {
                if let room = publishers[next].publish(at: Monotonic.nanoseconds(), payloadBytes: step.payloadBytes, binary: step.binary) {
                    report.expectedDeliveries += plan.target.deliveries(of: room)
                }
                next = (next + 1) % publishers.count
            }
            report.operations = pacer.issued
            load = .broadcast(step, publishers: publishers, next: next, pacer: pacer)
        case nil:
            break
        }
    }

    private func loadShortfall(at now: UInt64) -> Int {
        switch load {
        case .churn(let rejoins, let updates): rejoins.shortfall(at: now) + updates.shortfall(at: now)
        case .broadcast(_, _, _, let pacer): pacer.shortfall(at: now)
        case nil: 0
        }
    }

    /// The next open socket in the shuffled order: successive operations land on different sockets, which keeps
    /// every socket far below the server's presence rate limit (5 calls per 30 s).
    private func nextSocket() -> BenchSocket? {
        for _ in 0..<sockets.count {
            let socket = sockets[cursor]
            cursor = (cursor + 1) % sockets.count
            if socket.isOpen { return socket }
        }
        return nil
    }

    // MARK: Storm

    private func startStorm(_ step: StormStep, start: UInt64) {
        let members = sockets.filter(\.isOpen)
        guard !members.isEmpty else { return finishPhase() }
        stormMembersLeft = members.count
        report.firstSendAt = Monotonic.nanoseconds()
        for socket in members { socket.joinStorm(at: Monotonic.nanoseconds(), members: step.group.members) }
        schedule(in: step.timeoutSeconds) { worker, number in
            guard number == worker.phaseNumber else { return }
            worker.stormMembersLeft = 0
            worker.finishPhase(number: number)
        }
    }

    func socketConverged(_ socket: BenchSocket, at now: UInt64) {
        guard stormMembersLeft > 0, let start = phase?.start else { return }
        report.converged += 1
        report.setup.record(from: start, to: now)
        report.lastConvergedAt = now
        stormMembersLeft -= 1
        if stormMembersLeft == 0 { finishPhase() }
    }

    // MARK: Burst

    /// Member 0 publishes one message to its room a moment after the phase starts (so every worker has begun the
    /// phase when the first delivery arrives); each worker waits for its own sockets in that room.
    private func startBurst(_ step: BurstStep) {
        guard let group else { return finishPhase() }
        let room = group.rooms(of: 0)[0]
        let publisher = publisherOfBurst
        let receivers = sockets.filter { socket in
            socket.isOpen && socket.rooms[0].topic == room.topic
                && (socket.member != 0 || plan.target.deliveries(of: room) == room.members)
        }
        burstDeliveriesLeft = receivers.count
        schedule(in: 0.02) { worker, number in
            guard number == worker.phaseNumber, let publisher = worker.publisherOfBurst else { return }
            let sentAt = Monotonic.nanoseconds()
            guard let room = publisher.publish(at: sentAt, payloadBytes: step.payloadBytes, binary: false) else { return }
            worker.report.operations = 1
            worker.report.firstSendAt = sentAt
            worker.report.expectedDeliveries = worker.plan.target.deliveries(of: room)
            if worker.burstDeliveriesLeft == 0 { worker.finishPhase(number: number) }
        }
        if receivers.isEmpty && publisher == nil { return finishPhase() }
        schedule(in: step.timeoutSeconds) { worker, number in
            guard number == worker.phaseNumber else { return }
            worker.burstDeliveriesLeft = 0
            worker.finishPhase(number: number)
        }
    }

    private var publisherOfBurst: BenchSocket? { sockets.first { $0.member == 0 && $0.isOpen } }

    // MARK: nchan publishing

    static let publisherConnections = 4

    private func openPublishers() {
        publishers.removeAll(where: \.isGone)
        while publishers.count < Self.publisherConnections {
            let publisher = HTTPPublisher(host: plan.host, port: plan.port)
            publishers.append(publisher)
            let handler = NIOLoopBound(publisher, eventLoop: loop)
            let bootstrap = ClientBootstrap(group: loop)
                .channelOption(.tcpOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler.value) }
                }
            let source = try? SocketAddress(ipAddress: plan.sourceAddress, port: 0)
            (source.map { bootstrap.bind(to: $0) } ?? bootstrap)
                .connect(host: plan.host, port: plan.port)
                .whenFailure { _ in handler.value.connectFailed() }
        }
    }

    /// POSTs `message` to the channel of `topic` on the next open publisher connection; false when none is open
    /// (closed ones are replaced, for the next messages).
    func post(_ message: String, to topic: String) -> Bool {
        for _ in 0..<publishers.count {
            let publisher = publishers[nextPublisher]
            nextPublisher = (nextPublisher + 1) % publishers.count
            if publisher.post(message, channel: Target.channel(of: topic)) { return true }
        }
        if publishers.contains(where: \.isGone) { openPublishers() }
        return false
    }

    // MARK: Closing

    private func closeAll() {
        let open = sockets.filter { $0.isOpen }
        sockets = []
        socketsLeftToClose = open.count
        guard !open.isEmpty else { return finishPhase() }
        for socket in open { socket.close() }
        schedule(in: 10) { worker, number in
            guard number == worker.phaseNumber else { return }
            worker.socketsLeftToClose = 0
            worker.finishPhase(number: number)
        }
    }

    func socketClosed(_ socket: BenchSocket) {
        guard socketsLeftToClose > 0 else { return }
        socketsLeftToClose -= 1
        if socketsLeftToClose == 0 { finishPhase() }
    }
}

/// A small seeded generator, so each worker shuffles its sockets the same way on every run.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
