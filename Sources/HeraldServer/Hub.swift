import HeraldCore
import Logging
import NIOCore
import Synchronization

/// Routes everything that reaches more than one socket: postgres changes through the binding index, and
/// (later) broadcasts and presence by topic. One lock guards the routing state; it is held for lookups and
/// updates only, never across an `await` and never while writing to sockets.
final class Hub: Sendable {
    struct Member {
        let connection: Connection
        var join: ChannelJoin
        /// Whether the channel's postgres_changes bindings are live in the index.
        var subscribed = false
    }

    struct State {
        var connections: [UInt64: Connection] = [:]
        var members: [SubscriberID: Member] = [:]
        var index = PostgresBindingIndex()
    }

    private let state = Mutex(State())
    private let nextID = Atomic<UInt64>(1)
    private let catalog: TableCatalog
    private let logger: Logger

    init(catalog: TableCatalog, logger: Logger) {
        self.catalog = catalog
        self.logger = logger
    }

    func makeID() -> UInt64 { nextID.add(1, ordering: .relaxed).oldValue }

    // MARK: Connections and channels

    func register(_ connection: Connection) {
        state.withLock { $0.connections[connection.id] = connection }
    }

    func unregister(_ connection: Connection) {
        state.withLock { state in
            state.connections[connection.id] = nil
            for (id, member) in state.members where member.connection === connection {
                state.members[id] = nil
                state.index.remove(id)
            }
        }
    }

    /// Registers a joined channel and subscribes its postgres_changes bindings. Returns the `system` message
    /// reporting the subscription, for the caller to send after the join reply.
    func join(_ join: ChannelJoin, connection: Connection) async -> OutboundMessage? {
        state.withLock { $0.members[join.subscriber] = Member(connection: connection, join: join) }
        return await subscribe(join)
    }

    func leave(_ subscriber: SubscriberID) {
        state.withLock { state in
            state.members[subscriber] = nil
            state.index.remove(subscriber)
        }
    }

    /// A refreshed token: the channel re-subscribes with its new claims; returns the new `system` message.
    func refresh(_ subscriber: SubscriberID, claims: TokenClaims) async -> OutboundMessage? {
        let join: ChannelJoin? = state.withLock { state in
            state.members[subscriber]?.join.claims = claims
            return state.members[subscriber]?.join
        }
        guard let join else { return nil }
        return await subscribe(join)
    }

    private func subscribe(_ join: ChannelJoin) async -> OutboundMessage? {
        guard !join.bindings.isEmpty else { return nil }
        let outcome = await catalog.resolve(join.bindings)
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
            target.connection.send(frame)
        }
    }

    /// Tells every channel with live postgres_changes bindings that changes may have been missed (the change
    /// stream was interrupted), so clients can refetch.
    func reportGap(_ message: String) {
        let members = state.withLock { state in state.members.values.filter(\.subscribed) }
        for member in members {
            member.connection.send(SocketSession.system(member.join, extension: "postgres_changes", status: "error", message: message))
        }
    }

    // MARK: Housekeeping

    /// Closes sockets that sent nothing for `idleMilliseconds` and sockets whose unsent backlog exceeds
    /// `maxBufferedBytes`. Runs from one shared sweep, not a timer per socket.
    func sweep(now: Int64, idleMilliseconds: Int64, maxBufferedBytes: Int) async {
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

    /// Graceful shutdown: every socket gets a close frame.
    func closeAll() {
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { connection.close(.goingAway, reason: "server shutting down") }
    }

    var connectionCount: Int { state.withLock { $0.connections.count } }
}
