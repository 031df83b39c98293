import HeraldCore
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// Routes everything that reaches more than one socket: postgres changes through the binding index, broadcasts
/// and presence by topic. One lock guards the routing state; it is held for lookups and updates only, never
/// across an `await` and never while writing to sockets.
final class Hub: Sendable {
    struct Member {
        let connection: Connection
        var join: ChannelJoin {
            didSet { group = ClaimGroup(join.claims) }
        }
        /// Who the channel's token says it is, for row and column visibility.
        var group: ClaimGroup
        /// Whether the channel's postgres_changes bindings are live in the index.
        var subscribed = false
        /// Whether the channel has been sent `presence_state` (at join, or on its first track).
        var presenceSynced = false
        /// What the channel may do: everything on a public channel, what the policies allow on a private one.
        var access: ChannelAccess
        /// While a resuming channel's missed changes are being prepared, its live changes wait here.
        var held: [ByteBuffer]?
        /// A resumed channel's position: it already has every change up to it (seen before, or in its replay), so
        /// none of those may reach it live, even one still queued for dispatch when it resumed.
        var seenThrough: ChangePosition?

        init(connection: Connection, join: ChannelJoin, access: ChannelAccess) {
            self.connection = connection
            self.join = join
            self.group = ClaimGroup(join.claims)
            self.access = access
        }
    }

    /// A channel that matched a change: where to write, the binding ids it matched and who it is.
    struct ChangeTarget {
        let subscriber: SubscriberID
        let connection: Connection
        let topic: String
        let ids: [Int]
        let group: ClaimGroup
        /// A resumed channel gets no change at or before this position live (see `Member.seenThrough`).
        var seenThrough: ChangePosition? = nil
    }

    /// The channels whose bindings match a change, before authorization, with their distinct claim groups (what the
    /// database is asked about). Shared by every change of a table whose bindings ignore rows (`matchCache`).
    final class ChangeTargets: Sendable {
        let targets: [ChangeTarget]
        let groups: [ClaimGroup]
        /// Each target's index in `groups`.
        private let groupOfTarget: [Int]
        private let anySeenThrough: Bool

        init(_ targets: [ChangeTarget]) {
            var indexes: [ClaimGroup: Int] = [:]
            var groups: [ClaimGroup] = []
            groupOfTarget = targets.map { target in
                if let index = indexes[target.group] { return index }
                indexes[target.group] = groups.count
                groups.append(target.group)
                return groups.count - 1
            }
            self.targets = targets
            self.groups = groups
            anySeenThrough = targets.contains { $0.seenThrough != nil }
        }

        /// Without the resumed channels that already have the change at `position`.
        func unseen(at position: ChangePosition?) -> ChangeTargets {
            guard anySeenThrough, let position else { return self }
            return ChangeTargets(targets.filter { target in
                // (A position of another stream, refused at resume, says nothing about this one.)
                guard let seen = target.seenThrough, seen.stream == position.stream else { return true }
                return position > seen
            })
        }

        /// The targets whose group is admitted (`admitted[i]` for `groups[i]`).
        func admitted(_ admitted: [Bool]) -> [ChangeTarget] {
            var kept: [ChangeTarget] = []
            for (target, group) in zip(targets, groupOfTarget) where admitted[group] { kept.append(target) }
            return kept
        }
    }

    struct MatchKey: Hashable {
        let schema: String
        let table: String
        let type: ChangeType
    }

    struct State {
        var connections: [UInt64: Connection] = [:]
        var members: [SubscriberID: Member] = [:] {
            didSet { matchCache.removeAll() }
        }
        var topics: [TopicKey: Set<SubscriberID>] = [:]
        var index = PostgresBindingIndex() {
            didSet { matchCache.removeAll() }
        }
        /// The targets of tables whose bindings ignore rows, by change type: valid until a member or the index changes.
        var matchCache: [MatchKey: ChangeTargets] = [:]
        var presence: [TopicKey: PresenceTopicState] = [:]
        /// Topics whose presence changed since the last flush.
        var presenceDirty: Set<TopicKey> = []
        var presenceRefs = PresenceRefGenerator(node: UInt16.random(in: 0...UInt16.max))
        /// The position of the last change whose recipients were chosen: a channel subscribed now gets the later
        /// ones live and the earlier ones only by resuming.
        var targetedThrough: ChangePosition?
    }

    /// Where a resuming channel's replay ends (`targetedThrough` when it subscribed), and its bindings.
    struct ResumePoint: Sendable {
        let join: ChannelJoin
        let group: ClaimGroup
        let bindings: [PostgresBinding]
        let through: ChangePosition?
        let connection: Connection
    }

    /// A frame to write to some connections, encoded once per serializer version.
    struct Delivery {
        var recipients: [Connection]
        var frames: FrameSet
    }

    private let state = Mutex(State())
    private let nextID = Atomic<UInt64>(1)
    /// Kept outside the lock: every upgrade reads it.
    private let connections = Atomic<Int>(0)
    /// Set by `closeAll()`: a socket upgraded just before shutdown but registered after it is closed at once.
    private let shuttingDown = Atomic<Bool>(false)
    /// Channels whose live changes are held while their replay is prepared (read without the lock on every delivery).
    private let heldChannels = Atomic<Int>(0)
    private let catalog: TableCatalog
    /// Recent changes for resuming channels; its lock orders dispatching against resuming.
    let changeLog: ChangeLog
    private let logger: Logger
    /// Changes from the change source, delivered by `ChangeDispatcher`.
    let changes = ChangeQueue()
    let metrics: ServerMetrics

    init(catalog: TableCatalog, changeLog: ChangeLog = ChangeLog(), logger: Logger, metrics: ServerMetrics = ServerMetrics()) {
        self.catalog = catalog
        self.changeLog = changeLog
        self.logger = logger
        self.metrics = metrics
    }

    func makeID() -> UInt64 { nextID.add(1, ordering: .relaxed).oldValue }

    // MARK: Connections and channels

    func register(_ connection: Connection) {
        state.withLock { $0.connections[connection.id] = connection }
        connections.add(1, ordering: .relaxed)
        if shuttingDown.load(ordering: .sequentiallyConsistent) { connection.close(.goingAway, reason: "server shutting down") }
    }

    func unregister(_ connection: Connection) {
        connections.subtract(1, ordering: .relaxed)
        state.withLock { state in
            state.connections[connection.id] = nil
            for (id, member) in state.members where member.connection === connection {
                self.remove(id, from: &state)
            }
        }
    }

    typealias BindingResolution = Result<[PostgresBinding], SubscriptionError>

    /// Looks up the tables and columns of a channel's postgres_changes bindings, and checks that its role exists.
    func resolve(_ bindings: [BindingRequest], role: String) async -> BindingResolution {
        await catalog.resolve(bindings, role: role)
    }

    /// Registers a joined channel (and its resolved bindings) and sends the join reply, then the `system` message
    /// reporting the subscription and `presence_state` when presence is enabled. Off the socket's event loop these
    /// are queued to it while the lock is held, so no fan-out frame for the channel can reach the socket first.
    /// A channel that resumes (`postgres_changes_resume`) has its live changes held until `release`; the returned
    /// point says which changes its replay must cover.
    @discardableResult
    func join(_ join: ChannelJoin, reply: PhoenixMessage, connection: Connection, resolution: BindingResolution?, access: ChannelAccess = .everything) -> ResumePoint? {
        let onLoop = connection.eventLoop.inEventLoop
        let outcome: (messages: [PhoenixMessage], refusal: SubscriptionError?, resume: ResumePoint?)? = state.withLock { state in
            // The socket closed while its tables were being resolved.
            guard state.connections[connection.id] != nil else { return nil }
            var member = Member(connection: connection, join: join, access: access)
            var messages = [reply]
            var refusal: SubscriptionError?
            var resume: ResumePoint?
            switch resolution {
            case .success(let bindings)?:
                state.index.insert(join.subscriber, bindings: bindings)
                member.subscribed = true
                if let resumeText = join.config.postgresChangesResume {
                    member.held = []
                    member.seenThrough = ChangePosition(resumeText)
                    heldChannels.add(1, ordering: .sequentiallyConsistent)
                    resume = ResumePoint(join: join, group: member.group, bindings: bindings, through: state.targetedThrough, connection: connection)
                }
                messages.append(SocketSession.system(join, extension: "postgres_changes", status: "ok", message: "Subscribed to PostgreSQL"))
            case .failure(let error)?:
                refusal = error
                messages.append(SocketSession.system(join, extension: "postgres_changes", status: "error", message: error.message))
            case nil:
                break
            }
            // The newcomer gets what the others have seen, then the pending diff with them: no flush per join.
            if join.config.presenceEnabled && access.presenceRead {
                member.presenceSynced = true
                messages.append(Self.presenceState(for: join, in: state))
            }
            state.members[join.subscriber] = member
            state.topics[join.topicKey, default: []].insert(join.subscriber)
            if !onLoop {
                let queued = messages
                connection.eventLoop.execute { connection.send(queued) }
            }
            return (messages, refusal, resume)
        }
        guard let outcome else { return nil }
        if let refusal = outcome.refusal {
            logger.info(
                "postgres_changes subscription refused",
                metadata: ["connection": "\(connection.id)", "topic": "\(join.topic)", "reason": "\(refusal.message)"]
            )
        }
        if onLoop { connection.send(outcome.messages) }
        return outcome.resume
    }

    /// Ends a resuming channel's hold: its replay (`frames`), then the live changes that waited, in that order.
    func release(_ subscriber: SubscriberID, replay frames: [ByteBuffer]) {
        state.withLock { state in
            guard let member = state.members[subscriber], let held = member.held else { return }
            state.members[subscriber]?.held = nil
            heldChannels.subtract(1, ordering: .sequentiallyConsistent)
            member.connection.send(frames: frames + held)
        }
    }

    func leave(_ subscriber: SubscriberID) {
        state.withLock { self.remove(subscriber, from: &$0) }
    }

    private func remove(_ subscriber: SubscriberID, from state: inout State) {
        guard let member = state.members.removeValue(forKey: subscriber) else { return }
        if member.held != nil { heldChannels.subtract(1, ordering: .sequentiallyConsistent) }
        state.index.remove(subscriber)
        let topic = member.join.topicKey
        state.topics[topic]?.remove(subscriber)
        if state.topics[topic]?.isEmpty == true { state.topics[topic] = nil }
        if state.presence[topic]?.untrack(owner: PresenceOwner(rawValue: subscriber.rawValue)) == true {
            state.presenceDirty.insert(topic)
        }
    }

    /// A refreshed token: the channel keeps its new claims. Returns its postgres_changes bindings, which have to be
    /// resolved again (`resubscribe`), or nil when the channel is gone.
    func updateClaims(_ subscriber: SubscriberID, claims: TokenClaims) -> [BindingRequest]? {
        state.withLock { state in
            state.members[subscriber]?.join.claims = claims
            // On a private channel write permissions are asked again with the new claims.
            if state.members[subscriber]?.join.config.isPrivate == true {
                state.members[subscriber]?.access.broadcastWrite = nil
                state.members[subscriber]?.access.presenceWrite = nil
            }
            return state.members[subscriber]?.join.bindings
        }
    }

    /// Re-indexes a channel's bindings after a token refresh; returns the new `system` message.
    func resubscribe(_ subscriber: SubscriberID, resolution: BindingResolution) -> PhoenixMessage? {
        let member: Member? = state.withLock { state in
            guard state.members[subscriber] != nil else { return nil }
            switch resolution {
            case .success(let bindings):
                state.index.insert(subscriber, bindings: bindings)
                state.members[subscriber]?.subscribed = true
            case .failure:
                state.index.remove(subscriber)
                state.members[subscriber]?.subscribed = false
            }
            return state.members[subscriber]
        }
        guard let member else { return nil }
        let join = member.join
        switch resolution {
        case .success:
            return SocketSession.system(join, extension: "postgres_changes", status: "ok", message: "Subscribed to PostgreSQL")
        case .failure(let error):
            logger.info(
                "postgres_changes subscription refused",
                metadata: ["connection": "\(member.connection.id)", "topic": "\(join.topic)", "reason": "\(error.message)"]
            )
            return SocketSession.system(join, extension: "postgres_changes", status: "error", message: error.message)
        }
    }

    // MARK: Postgres changes

    /// Queues a committed change for delivery (`ChangeDispatcher`), in commit order.
    func dispatch(_ change: Change) {
        metrics.changeReceived()
        changes.submit(.change(change))
    }

    var hasQueuedChanges: Bool { !changes.isEmpty }

    /// Queues a gap report behind the changes before it.
    func reportGap(_ message: String) {
        changes.submit(.gap(message))
    }

    /// The channels whose bindings match a change.
    func targets(for change: Change) -> ChangeTargets {
        let matched = state.withLock { state in
            if let position = change.position { state.targetedThrough = position }
            let key = MatchKey(schema: change.schema, table: change.table, type: change.type)
            if let cached = state.matchCache[key] { return cached }
            let members = state.members
            let matched = ChangeTargets(state.index.match(change).compactMap { match in
                guard let member = members[match.subscriber] else { return nil }
                return ChangeTarget(
                    subscriber: match.subscriber, connection: member.connection, topic: member.join.topic, ids: match.ids, group: member.group,
                    seenThrough: member.seenThrough
                )
            })
            if state.index.matchIgnoresRows(schema: change.schema, table: change.table) { state.matchCache[key] = matched }
            return matched
        }
        return matched.unseen(at: change.position)
    }

    /// Adds an authorized change for the channels that may see it to `fanOut`, with frames shared as `ChangeFrames`
    /// allows. Channels that are resuming keep theirs until their replay is sent.
    func deliver(_ change: AuthorizedChange, to targets: [ChangeTarget], in fanOut: inout FanOut) {
        guard !targets.isEmpty else { return }
        metrics.delivered(.postgresChanges, count: targets.count)
        var frames = ChangeFrames(change)
        let writes = targets.map { (target: $0, frame: frames.frame(for: $0)) }
        let held = heldChannels.load(ordering: .sequentiallyConsistent) > 0 ? hold(writes) : []
        for write in writes where !held.contains(write.target.subscriber) {
            fanOut.add(write.frame, to: write.target.connection)
        }
    }

    /// Keeps the frames meant for resuming channels whose replay is not sent yet; returns those channels.
    private func hold(_ writes: [(target: ChangeTarget, frame: ByteBuffer)]) -> Set<SubscriberID> {
        state.withLock { state in
            var held: Set<SubscriberID> = []
            for write in writes where state.members[write.target.subscriber]?.held != nil {
                state.members[write.target.subscriber]?.held?.append(write.frame)
                held.insert(write.target.subscriber)
            }
            return held
        }
    }

    /// Tells every channel with live postgres_changes bindings that changes may have been missed (the change
    /// stream was interrupted), so clients can refetch.
    func sendGap(_ message: String) {
        Self.sendGap(message, to: state.withLock { state in state.members.values.filter(\.subscribed) })
    }

    /// Tells some channels that changes were missed.
    func sendGap(_ message: String, to targets: [ChangeTarget]) {
        Self.sendGap(message, to: state.withLock { state in targets.compactMap { state.members[$0.subscriber] } })
    }

    private static func sendGap(_ message: String, to members: [Member]) {
        for member in members {
            member.connection.send(SocketSession.system(member.join, extension: "postgres_changes", status: "error", message: message))
        }
    }

    // MARK: Broadcast

    /// Fans a broadcast out to every channel of its topic (the sender only with `self`).
    func broadcast(_ message: BroadcastMessage) {
        let recipients: [Connection] = state.withLock { state in
            // A channel the hub closed (token expired) may not speak any more, whatever its socket still thinks.
            if let sender = message.sender, state.members[sender] == nil { return [] }
            guard let subscribers = state.topics[message.topic] else { return [] }
            return subscribers.compactMap { id in
                guard message.includeSender || id != message.sender, let member = state.members[id], member.access.broadcastRead else { return nil }
                return member.connection
            }
        }
        guard !recipients.isEmpty else { return }
        metrics.delivered(.broadcast, count: recipients.count)
        deliver(Delivery(recipients: recipients, frames: FrameSet(broadcast: message)))
    }

    // MARK: Presence

    /// What a channel may do, with the topic and claims its policies are checked against; nil when it is gone.
    func access(of subscriber: SubscriberID) -> (join: ChannelJoin, access: ChannelAccess)? {
        state.withLock { state in state.members[subscriber].map { ($0.join, $0.access) } }
    }

    /// Remembers a write decision of the policies until the channel's token changes.
    func rememberWrite(_ subscriber: SubscriberID, extension ext: ChannelAccess.Extension, allowed: Bool) {
        state.withLock { state in
            switch ext {
            case .broadcast: state.members[subscriber]?.access.broadcastWrite = allowed
            case .presence: state.members[subscriber]?.access.presenceWrite = allowed
            }
        }
    }

    /// A refreshed token that may no longer read: the new read permissions.
    func updateReadAccess(_ subscriber: SubscriberID, broadcast: Bool, presence: Bool) {
        state.withLock { state in
            state.members[subscriber]?.access.broadcastRead = broadcast
            state.members[subscriber]?.access.presenceRead = presence
        }
    }

    func track(_ subscriber: SubscriberID, payload: JSONObject) {
        let firstSync: (Connection, PhoenixMessage)? = state.withLock { state in
            guard let member = state.members[subscriber] else { return nil }
            let topic = member.join.topicKey
            var sync: (Connection, PhoenixMessage)?
            if !member.presenceSynced && member.access.presenceRead {
                // A track on a channel that did not enable presence at join: it gets the state now.
                state.members[subscriber]?.presenceSynced = true
                sync = (member.connection, Self.presenceState(for: member.join, in: state))
            }
            let ref = state.presenceRefs.next(now: UInt64(WallClock.microseconds()) * 1000)
            let result = state.presence[topic, default: PresenceTopicState()].track(
                owner: PresenceOwner(rawValue: subscriber.rawValue),
                key: member.join.presenceKey,
                payload: payload,
                ref: ref
            )
            if result != .unchanged { state.presenceDirty.insert(topic) }
            return sync
        }
        if let (connection, presenceState) = firstSync {
            connection.send(presenceState)
        }
    }

    func untrack(_ subscriber: SubscriberID) {
        state.withLock { state in
            guard let topic = state.members[subscriber]?.join.topicKey else { return }
            if state.presence[topic]?.untrack(owner: PresenceOwner(rawValue: subscriber.rawValue)) == true {
                state.presenceDirty.insert(topic)
            }
        }
    }

    /// Sends every pending presence diff; called by the presence batching loop every few milliseconds, so a join
    /// storm becomes a few diffs per member instead of one per join.
    func flushPresence() {
        let deliveries: [Delivery] = state.withLock { state in
            let dirty = state.presenceDirty
            state.presenceDirty.removeAll(keepingCapacity: true)
            return dirty.compactMap { Self.flushPresence($0, in: &state) }
        }
        for delivery in deliveries {
            metrics.delivered(.presence, count: delivery.recipients.count)
            deliver(delivery)
        }
    }

    private static func flushPresence(_ topic: TopicKey, in state: inout State) -> Delivery? {
        guard let diff = state.presence[topic]?.flushDiff() else { return nil }
        if state.presence[topic]?.isEmpty == true { state.presence[topic] = nil }
        let recipients = (state.topics[topic] ?? []).compactMap { id in
            state.members[id].flatMap { $0.access.presenceRead ? $0.connection : nil }
        }
        guard !recipients.isEmpty else { return nil }
        return Delivery(recipients: recipients, frames: FrameSet(topic: "realtime:" + topic.subTopic, event: "presence_diff", payload: diff.jsonBytes))
    }

    private static func presenceState(for join: ChannelJoin, in state: State) -> PhoenixMessage {
        let payload = state.presence[join.topicKey]?.publishedState ?? .object([:])
        return PhoenixMessage(joinRef: join.joinRef, ref: nil, topic: join.topic, event: "presence_state", payload: payload)
    }

    private func deliver(_ delivery: Delivery) {
        var frames = delivery.frames
        var fanOut = FanOut()
        for connection in delivery.recipients {
            guard !connection.isClosing, let frame = frames.frame(for: connection.version) else { continue }
            fanOut.add(frame, to: connection)
        }
        fanOut.submit()
    }

    // MARK: Housekeeping

    /// Closes sockets that sent nothing for `idleMilliseconds` and channels whose token expired; with
    /// `sampleQueues`, also sums the sockets' unsent bytes for the metrics. Runs from one shared sweep, not a timer
    /// per socket: one atomic read per socket, and for the sample one task per event loop. (Slow consumers are
    /// closed by their own socket's handler the moment their backlog passes the high water mark.)
    func sweep(now: Int64, idleMilliseconds: Int64, sampleQueues: Bool) {
        closeExpiredChannels(nowSeconds: now / 1000)
        let connections = state.withLock { Array($0.connections.values) }
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, connections: [Connection])] = [:]
        for connection in connections {
            if now - connection.lastInboundMilliseconds > idleMilliseconds {
                // A socket already closing may linger for a sweep or two: count and log it once.
                if connection.close(.normalClosure, reason: "idle timeout") {
                    logger.debug("closing idle socket", metadata: ["connection": "\(connection.id)"])
                    metrics.socketClosed(.idleTimeout)
                }
                continue
            }
            if sampleQueues {
                byLoop[ObjectIdentifier(connection.eventLoop), default: (connection.eventLoop, [])].connections.append(connection)
            }
        }
        guard sampleQueues, let anyLoop = byLoop.first?.value.loop else {
            if sampleQueues { metrics.sampledOutboundQueue(bytes: 0) }
            return
        }
        let sums = byLoop.values.map { group in
            let members = group.connections
            return group.loop.submit { members.reduce(0) { $0 + $1.bufferedBytesOnLoop() } }
        }
        let metrics = self.metrics
        EventLoopFuture.whenAllSucceed(sums, on: anyLoop).whenSuccess { metrics.sampledOutboundQueue(bytes: $0.reduce(0, +)) }
    }

    /// Channels whose token has expired get upstream's `system` error and `phx_close`, and leave the hub.
    func closeExpiredChannels(nowSeconds: Int64) {
        let expired: [Member] = state.withLock { state in
            let expired = state.members.values.filter { $0.join.claims.expiresAt <= nowSeconds }
            for member in expired { self.remove(member.join.subscriber, from: &state) }
            return expired
        }
        metrics.channelsClosed(.tokenExpired, count: expired.count)
        for member in expired {
            logger.debug("closing channel: token expired", metadata: ["connection": "\(member.connection.id)", "topic": "\(member.join.topic)"])
            let seconds = nowSeconds - member.join.claims.expiresAt
            member.connection.send(SocketSession.system(member.join, extension: "system", status: "error", message: "Token has expired \(seconds) seconds ago"))
            member.connection.send(SocketSession.close(member.join))
        }
    }

    /// Graceful shutdown: every socket gets a close frame.
    func closeAll() {
        shuttingDown.store(true, ordering: .sequentiallyConsistent)
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { connection.close(.goingAway, reason: "server shutting down") }
    }

    var connectionCount: Int { connections.load(ordering: .relaxed) }

    var joinedChannelCount: Int { state.withLock { $0.members.count } }
}

/// What a channel may do. Public channels may do everything; on a private channel the policies on realtime.messages
/// decide at join (read) and on first use (write), reference section 4.4.
struct ChannelAccess: Sendable {
    enum Extension: String, Sendable {
        case broadcast
        case presence
    }

    var broadcastRead = true
    var presenceRead = true
    /// nil: not asked yet.
    var broadcastWrite: Bool? = true
    var presenceWrite: Bool? = true

    static let everything = ChannelAccess()

    /// A private channel, with what its token may read; writes are asked on first use.
    static func `private`(broadcastRead: Bool, presenceRead: Bool) -> ChannelAccess {
        ChannelAccess(broadcastRead: broadcastRead, presenceRead: presenceRead, broadcastWrite: nil, presenceWrite: nil)
    }

    func write(_ ext: Extension) -> Bool? {
        switch ext {
        case .broadcast: broadcastWrite
        case .presence: presenceWrite
        }
    }
}

/// One fan-out message, encoded and framed lazily once per serializer version and shared by every recipient.
struct FrameSet {
    private let encode: (SerializerVersion) -> ByteBuffer?
    private var v1: ByteBuffer??
    private var v2: ByteBuffer??

    /// `encode` returns the message's WebSocket payload and whether it is a binary frame.
    init(encode: @escaping (SerializerVersion) -> (payload: ByteBuffer, binary: Bool)?) {
        self.encode = { version in
            encode(version).map { WebSocketFraming.frame($0.payload, opcode: $0.binary ? .binary : .text) }
        }
    }

    /// A fan-out text frame (`[null,null,topic,event,payload]` / `{"topic","event","payload","ref":null}`).
    init(topic: String, event: String, payload: [UInt8]) {
        self.init { version in
            (PhoenixFrame.encode(version, joinRef: nil, ref: nil, topic: topic, event: event, payload: payload), false)
        }
    }

    /// Reference section 1.3: JSON pushes go out as text to everyone; user broadcasts as kind 4 to V2 sockets and as
    /// JSON `{"event","payload","type":"broadcast"}` to V1 sockets (binary payloads are not delivered to V1).
    init(broadcast message: BroadcastMessage) {
        let topic = "realtime:" + message.topic.subTopic
        switch message.content {
        case .json(let payload):
            self.init(topic: topic, event: "broadcast", payload: payload)
        case .user(let event, let encoding, let payload, let metadata):
            self.init { version in
                switch version {
                case .v2:
                    var buffer = ByteBuffer()
                    let frame = BinaryFrame.userBroadcast(topic: topic, event: event, metadata: metadata, encoding: encoding, payload: ByteBuffer(bytes: payload))
                    guard (try? frame.encode(into: &buffer)) != nil else { return nil }
                    return (buffer, true)
                case .v1:
                    guard encoding == .json, let value = try? JSONValue.parse(payload) else { return nil }
                    var object: JSONObject = ["event": .string(event), "payload": value, "type": "broadcast"]
                    if let metadata { object["meta"] = .object(metadata) }
                    return (PhoenixFrame.encode(.v1, joinRef: nil, ref: nil, topic: topic, event: "broadcast", payload: JSONValue.object(object).jsonBytes), false)
                }
            }
        }
    }

    /// The finished frame for one serializer, or nil when the message cannot be sent to it.
    mutating func frame(for version: SerializerVersion) -> ByteBuffer? {
        switch version {
        case .v1:
            if let cached = v1 { return cached }
            let frame = encode(.v1)
            v1 = .some(frame)
            return frame
        case .v2:
            if let cached = v2 { return cached }
            let frame = encode(.v2)
            v2 = .some(frame)
            return frame
        }
    }
}

/// The frames of one authorized change: its `data` object encoded once per role, each distinct (serializer, topic,
/// ids, role) frame encoded and WebSocket-framed once, so every socket that gets the same frame shares its bytes.
struct ChangeFrames {
    private struct Key: Hashable {
        let version: SerializerVersion
        let topic: String
        let ids: [Int]
        let role: String
    }

    private let change: AuthorizedChange
    private var dataByRole: [String: [UInt8]] = [:]
    private var frames: [Key: ByteBuffer] = [:]
    /// Recipients come channel by channel, mostly alike: comparing with the last key spares hashing it.
    private var last: (key: Key, frame: ByteBuffer)?

    init(_ change: AuthorizedChange) { self.change = change }

    mutating func frame(for target: Hub.ChangeTarget) -> ByteBuffer {
        let key = Key(version: target.connection.version, topic: target.topic, ids: target.ids, role: target.group.role)
        if let last, last.key == key { return last.frame }
        let frame = frames[key] ?? encode(key)
        last = (key, frame)
        return frame
    }

    private mutating func encode(_ key: Key) -> ByteBuffer {
        let data = dataByRole[key.role] ?? JSONValue.object(change.data(role: key.role)).jsonBytes
        dataByRole[key.role] = data
        let payload = ChangeEvent.payload(ids: key.ids, data: data)
        let frame = WebSocketFraming.text(PhoenixFrame.encode(key.version, joinRef: nil, ref: nil, topic: key.topic, event: "postgres_changes", payload: payload))
        frames[key] = frame
        return frame
    }
}

/// Hands a fan-out to the event loops, one batch per loop: each writes its connections' frames, then flushes them
/// (a connection's first flush sends all its frames in one write; the others find nothing left), instead of one
/// task and one syscall per delivery. The batch of the calling thread's own loop runs inline.
struct FanOut {
    private struct Write {
        let connection: Connection
        let frame: ByteBuffer
    }

    private var batches: [ObjectIdentifier: (loop: any EventLoop, writes: [Write])] = [:]
    /// Writes added since the last submit.
    private(set) var count = 0

    mutating func add(_ frame: ByteBuffer, to connection: Connection) {
        let loop = connection.eventLoop
        batches[ObjectIdentifier(loop), default: (loop, [])].writes.append(Write(connection: connection, frame: frame))
        count += 1
    }

    /// Hands the writes added so far to their loops and starts over.
    mutating func submit() {
        for (_, batch) in batches {
            let writes = batch.writes
            if batch.loop.inEventLoop {
                Self.write(writes)
            } else {
                batch.loop.execute { Self.write(writes) }
            }
        }
        batches = [:]
        count = 0
    }

    private static func write(_ writes: [Write]) {
        for write in writes { write.connection.writeOnLoop(write.frame) }
        for write in writes { write.connection.flushOnLoop() }
    }
}
