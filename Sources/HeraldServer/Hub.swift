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
        var join: ChannelJoin
        /// Whether the channel's postgres_changes bindings are live in the index.
        var subscribed = false
        /// Whether the channel has been sent `presence_state` (at join, or on its first track).
        var presenceSynced = false
    }

    struct State {
        var connections: [UInt64: Connection] = [:]
        var members: [SubscriberID: Member] = [:]
        var topics: [TopicKey: Set<SubscriberID>] = [:]
        var index = PostgresBindingIndex()
        var presence: [TopicKey: PresenceTopicState] = [:]
        /// Topics whose presence changed since the last flush.
        var presenceDirty: Set<TopicKey> = []
        var presenceRefs = PresenceRefGenerator(node: UInt16.random(in: 0...UInt16.max))
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
    private let catalog: TableCatalog
    /// Recent changes for resuming channels; its lock orders dispatching against resuming.
    let changeLog: ChangeLog
    private let logger: Logger

    init(catalog: TableCatalog, changeLog: ChangeLog = ChangeLog(), logger: Logger) {
        self.catalog = catalog
        self.changeLog = changeLog
        self.logger = logger
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
                Self.remove(id, from: &state)
            }
        }
    }

    /// Registers a joined channel, subscribes its postgres_changes bindings and sends `reply`, then the `system`
    /// message reporting the subscription, the changes missed since `postgres_changes_resume` (if any), then
    /// `presence_state` when presence is enabled.
    func join(_ join: ChannelJoin, reply: PhoenixMessage, connection: Connection) async {
        let presenceState: PhoenixMessage? = state.withLock { state in
            var member = Member(connection: connection, join: join)
            // The newcomer gets what the others have seen, then the pending diff with them: no flush per join.
            var presenceState: PhoenixMessage?
            if join.config.presenceEnabled {
                member.presenceSynced = true
                presenceState = Self.presenceState(for: join, in: state)
            }
            state.members[join.subscriber] = member
            state.topics[join.topicKey, default: []].insert(join.subscriber)
            return presenceState
        }
        if join.bindings.isEmpty {
            connection.send(reply)
        } else {
            let outcome = await catalog.resolve(join.bindings)
            // No change is dispatched meanwhile: the channel gets none before its reply, and each later one
            // exactly once, from the replay or live.
            changeLog.pausingDispatch { retention in
                let report = file(outcome, for: join)
                connection.send(reply)
                guard let report else { return }
                connection.send(report)
                if case .success(let bindings) = outcome, let resume = join.config.postgresChangesResume {
                    ResumedChanges.send(after: resume, from: retention, join: join, bindings: bindings, to: connection)
                }
            }
        }
        if let presenceState { connection.send(presenceState) }
    }

    func leave(_ subscriber: SubscriberID) {
        state.withLock { Self.remove(subscriber, from: &$0) }
    }

    private static func remove(_ subscriber: SubscriberID, from state: inout State) {
        guard let member = state.members.removeValue(forKey: subscriber) else { return }
        state.index.remove(subscriber)
        let topic = member.join.topicKey
        state.topics[topic]?.remove(subscriber)
        if state.topics[topic]?.isEmpty == true { state.topics[topic] = nil }
        if state.presence[topic]?.untrack(owner: PresenceOwner(rawValue: subscriber.rawValue)) == true {
            state.presenceDirty.insert(topic)
        }
    }

    /// A refreshed token: the channel re-subscribes with its new claims; returns the new `system` message.
    func refresh(_ subscriber: SubscriberID, claims: TokenClaims) async -> PhoenixMessage? {
        let join: ChannelJoin? = state.withLock { state in
            state.members[subscriber]?.join.claims = claims
            return state.members[subscriber]?.join
        }
        guard let join else { return nil }
        return await subscribe(join)
    }

    private func subscribe(_ join: ChannelJoin) async -> PhoenixMessage? {
        guard !join.bindings.isEmpty else { return nil }
        return file(await catalog.resolve(join.bindings), for: join)
    }

    /// Files (or drops) the channel's bindings; returns the `system` message that reports it, nil when the
    /// channel has left meanwhile.
    private func file(_ outcome: Result<[PostgresBinding], SubscriptionError>, for join: ChannelJoin) -> PhoenixMessage? {
        let stillJoined: Bool = state.withLock { state in
            guard state.members[join.subscriber] != nil else { return false }
            switch outcome {
            case .success(let bindings):
                state.index.insert(join.subscriber, bindings: bindings)
                state.members[join.subscriber]?.subscribed = true
            case .failure:
                state.index.remove(join.subscriber)
                state.members[join.subscriber]?.subscribed = false
            }
            return true
        }
        guard stillJoined else { return nil }
        switch outcome {
        case .success:
            return SocketSession.system(join, extension: "postgres_changes", status: "ok", message: "Subscribed to PostgreSQL")
        case .failure(let error):
            logger.info("postgres_changes subscription refused", metadata: ["topic": "\(join.topic)", "reason": "\(error.message)"])
            return SocketSession.system(join, extension: "postgres_changes", status: "error", message: error.message)
        }
    }

    // MARK: Postgres changes

    /// Delivers one change to every matching channel: the `data` object is encoded once, each distinct
    /// (serializer, topic, ids) frame once, and the same bytes are written to every socket that gets them.
    func dispatch(_ change: Change) {
        struct Target {
            let connection: Connection
            let topic: String
            let ids: [Int]
        }
        let targets: [Target] = state.withLock { state in
            state.index.match(change).compactMap { match in
                state.members[match.subscriber].map { Target(connection: $0.connection, topic: $0.join.topic, ids: match.ids) }
            }
        }
        guard !targets.isEmpty else { return }
        let data = JSONValue.object(ChangeEvent.data(change)).jsonBytes
        struct FrameKey: Hashable {
            let version: SerializerVersion
            let topic: String
            let ids: [Int]
        }
        var frames: [FrameKey: ByteBuffer] = [:]
        var fanOut = FanOut()
        for target in targets {
            let key = FrameKey(version: target.connection.version, topic: target.topic, ids: target.ids)
            let frame: ByteBuffer
            if let cached = frames[key] {
                frame = cached
            } else {
                frame = PhoenixFrame.encode(
                    key.version,
                    joinRef: nil,
                    ref: nil,
                    topic: key.topic,
                    event: "postgres_changes",
                    payload: ChangeEvent.payload(ids: key.ids, data: data)
                )
                frames[key] = frame
            }
            fanOut.add(frame, binary: false, to: target.connection)
        }
        fanOut.submit()
    }

    /// Tells every channel with live postgres_changes bindings that changes may have been missed (the change
    /// stream was interrupted), so clients can refetch.
    func reportGap(_ message: String) {
        let members = state.withLock { state in state.members.values.filter(\.subscribed) }
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
                guard message.includeSender || id != message.sender else { return nil }
                return state.members[id]?.connection
            }
        }
        guard !recipients.isEmpty else { return }
        deliver(Delivery(recipients: recipients, frames: FrameSet(broadcast: message)))
    }

    // MARK: Presence

    func track(_ subscriber: SubscriberID, payload: JSONObject) {
        let firstSync: (Connection, PhoenixMessage)? = state.withLock { state in
            guard let member = state.members[subscriber] else { return nil }
            let topic = member.join.topicKey
            var sync: (Connection, PhoenixMessage)?
            if !member.presenceSynced {
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
        for delivery in deliveries { deliver(delivery) }
    }

    private static func flushPresence(_ topic: TopicKey, in state: inout State) -> Delivery? {
        guard let diff = state.presence[topic]?.flushDiff() else { return nil }
        if state.presence[topic]?.isEmpty == true { state.presence[topic] = nil }
        let recipients = (state.topics[topic] ?? []).compactMap { state.members[$0]?.connection }
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
            guard let frame = frames.frame(for: connection.version) else { continue }
            fanOut.add(frame.bytes, binary: frame.binary, to: connection)
        }
        fanOut.submit()
    }

    // MARK: Housekeeping

    /// Closes sockets that sent nothing for `idleMilliseconds` and sockets whose unsent backlog exceeds
    /// `maxBufferedBytes`. Runs from one shared sweep, not a timer per socket.
    func sweep(now: Int64, idleMilliseconds: Int64, maxBufferedBytes: Int) async {
        closeExpiredChannels(nowSeconds: now / 1000)
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections {
            if now - connection.lastInboundMilliseconds > idleMilliseconds {
                logger.debug("closing idle socket", metadata: ["connection": "\(connection.id)"])
                connection.close(.normalClosure, reason: "idle timeout")
                continue
            }
            let buffered = await connection.bufferedBytes()
            if buffered > maxBufferedBytes {
                logger.warning(
                    "closing slow consumer",
                    metadata: ["connection": "\(connection.id)", "buffered_bytes": "\(buffered)"]
                )
                connection.close(.policyViolation, reason: "slow consumer: outbound queue full")
            }
        }
    }

    /// Channels whose token has expired get upstream's `system` error and `phx_close`, and leave the hub.
    func closeExpiredChannels(nowSeconds: Int64) {
        let expired: [Member] = state.withLock { state in
            let expired = state.members.values.filter { $0.join.claims.expiresAt <= nowSeconds }
            for member in expired { Self.remove(member.join.subscriber, from: &state) }
            return expired
        }
        for member in expired {
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
}

/// One fan-out message, encoded lazily once per serializer version and shared by every recipient.
struct FrameSet {
    struct Frame {
        var bytes: ByteBuffer
        var binary: Bool
    }

    private let encode: (SerializerVersion) -> Frame?
    private var v1: Frame??
    private var v2: Frame??

    init(encode: @escaping (SerializerVersion) -> Frame?) {
        self.encode = encode
    }

    /// A fan-out text frame (`[null,null,topic,event,payload]` / `{"topic","event","payload","ref":null}`).
    init(topic: String, event: String, payload: [UInt8]) {
        self.init { version in
            Frame(bytes: PhoenixFrame.encode(version, joinRef: nil, ref: nil, topic: topic, event: event, payload: payload), binary: false)
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
                    return Frame(bytes: buffer, binary: true)
                case .v1:
                    guard encoding == .json, let value = try? JSONValue.parse(payload) else { return nil }
                    var object: JSONObject = ["event": .string(event), "payload": value, "type": "broadcast"]
                    if let metadata { object["meta"] = .object(metadata) }
                    return Frame(bytes: PhoenixFrame.encode(.v1, joinRef: nil, ref: nil, topic: topic, event: "broadcast", payload: JSONValue.object(object).jsonBytes), binary: false)
                }
            }
        }
    }

    mutating func frame(for version: SerializerVersion) -> Frame? {
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

/// Hands a fan-out to the event loops in one task per loop: each writes its connections' frames and flushes each
/// connection once, instead of one task and one syscall per delivery.
struct FanOut {
    private struct Write {
        let connection: Connection
        let bytes: ByteBuffer
        let binary: Bool
    }

    private var batches: [ObjectIdentifier: (loop: any EventLoop, writes: [Write])] = [:]

    mutating func add(_ bytes: ByteBuffer, binary: Bool, to connection: Connection) {
        let loop = connection.eventLoop
        batches[ObjectIdentifier(loop), default: (loop, [])].writes.append(Write(connection: connection, bytes: bytes, binary: binary))
    }

    func submit() {
        for (_, batch) in batches {
            let writes = batch.writes
            batch.loop.execute {
                for write in writes { write.connection.writeOnLoop(write.bytes, binary: write.binary) }
                for write in writes { write.connection.flushOnLoop() }
            }
        }
    }
}
