import Foundation
import HeraldCore
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// What every socket's handler shares.
struct SocketServices: Sendable {
    let hub: Hub
    let verifier: TokenVerifier
    let policies: ChannelPolicies
    /// Joins per second over the whole server.
    let joins: JoinRateLimit
    /// Replays missed changes to resuming channels.
    let changes: ChangeDispatcher
    let maxMessageBytes: Int
    let limits: SessionLimits
    let logger: Logger
}

/// The server-wide joins-per-second limit, shared by every socket.
final class JoinRateLimit: Sendable {
    private let limiter: Mutex<WindowRateLimiter>

    init(perSecond: Int) {
        limiter = Mutex(WindowRateLimiter(maxCalls: perSecond, window: .seconds(1)))
    }

    func allow(now: ContinuousClock.Instant = .now) -> Bool {
        limiter.withLock { $0.allowCall(at: now) }
    }
}

/// Runs one upgraded WebSocket on its event loop: reads frames, assembles messages, feeds them to the socket's
/// `SocketSession` and performs the actions it returns. No task and no stream per socket: everything but the
/// database lookups of a join runs inline on the loop, and every outbound frame goes through the socket's
/// `Connection`.
final class SocketSessionHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame

    private let services: SocketServices
    private let connection: Connection
    private var session: SocketSession
    private var assembler: MessageAssembler
    private var logger: Logger
    /// Set while an action waits for the database (a join resolving its tables, a refreshed token). Messages that
    /// arrive meanwhile wait here and run afterwards in order, so replies keep the order of the requests.
    private var suspended = false
    private var waiting = CircularBuffer<(binary: Bool, bytes: ByteBuffer)>()
    private var active = true

    init(services: SocketServices, connection: Connection) {
        self.services = services
        self.connection = connection
        self.session = SocketSession(version: connection.version, limits: services.limits)
        self.assembler = MessageAssembler(maxBytes: services.maxMessageBytes)
        var logger = services.logger
        logger[metadataKey: "connection"] = "\(connection.id)"
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        services.hub.register(connection)
        logger.debug("socket opened", metadata: ["vsn": "\(connection.version)"])
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !connection.isClosing else { return }
        connection.touch(now: WallClock.milliseconds())
        switch frame.opcode {
        case .ping:
            connection.sendPong(frame.unmaskedData)
        case .connectionClose:
            var data = frame.unmaskedData
            connection.close(data.readWebSocketErrorCode() ?? .normalClosure)
        case .text, .binary, .continuation:
            switch assembler.append(frame) {
            case .incomplete:
                break
            case .tooLarge:
                logger.info("closing socket: inbound message over the size limit")
                services.hub.metrics.socketClosed(.tooLarge)
                connection.close(.messageTooLarge)
            case .protocolError:
                logger.info("closing socket: fragmented message out of order")
                services.hub.metrics.socketClosed(.protocolError)
                connection.close(.protocolError)
            case .message(let binary, let bytes):
                if suspended {
                    waiting.append((binary, bytes))
                } else {
                    handle(bytes, binary: binary, context: context)
                }
            }
        default:
            break
        }
    }

    /// A backlog past the high water mark (`maxBufferedBytes`) is a client that stopped reading.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard !context.channel.isWritable, !connection.isClosing else { return }
        logger.warning("closing slow consumer: outbound queue full")
        services.hub.metrics.socketClosed(.slowConsumer)
        connection.close(.policyViolation, reason: "slow consumer: outbound queue full")
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? NIOWebSocketError {
            logger.info("closing socket: invalid WebSocket frame", metadata: ["reason": "\(error)"])
            services.hub.metrics.socketClosed(error == .invalidFrameLength ? .tooLarge : .protocolError)
            connection.close(error == .invalidFrameLength ? .messageTooLarge : .protocolError)
        } else {
            logger.debug("socket error", metadata: ["error": "\(error)"])
            connection.abort()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { connection.abort() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        active = false
        waiting.removeAll()
        run(session.close()[...], context: context)
        services.hub.unregister(connection)
        logger.debug("socket closed")
        context.fireChannelInactive()
    }

    // MARK: Messages

    private func handle(_ bytes: ByteBuffer, binary: Bool, context: ChannelHandlerContext) {
        let message: PhoenixMessage
        do {
            if binary {
                guard session.version == .v2 else { throw FrameDecodingError("binary frames need vsn 2.0.0") }
                switch try BinaryFrame(decoding: bytes, sentBy: .client) {
                case .userBroadcastPush(_, let ref, let topic, let event, _, let encoding, let payload):
                    services.hub.metrics.received(event: "broadcast")
                    let actions = session.handleUserBroadcast(topic: topic, ref: ref, event: event, encoding: encoding, payload: Array(payload.readableBytesView), now: .now)
                    run(actions[...], context: context)
                    return
                case .push(let joinRef, let ref, let topic, let event, let payload):
                    message = PhoenixMessage(joinRef: joinRef, ref: ref, topic: topic, event: event, payload: try JSONValue.parse(payload.readableBytesView))
                case .userBroadcast:
                    throw FrameDecodingError("clients may not send kind 4")
                }
            } else {
                message = try PhoenixMessage.decode(text: bytes.readableBytesView, version: session.version)
            }
        } catch {
            logger.info("dropped a malformed message", metadata: ["reason": "\(error)"])
            services.hub.metrics.dropped(.malformed)
            return
        }
        services.hub.metrics.received(event: message.event)
        if message.event == "phx_join", message.topic.hasPrefix("realtime:"), !services.joins.allow() {
            // Upstream refuses the join and closes the socket.
            logger.warning("join refused: too many joins per second")
            connection.send(.reply(to: message.ref, joinRef: message.joinRef, topic: message.topic, status: "error", response: ["reason": .string(WindowRateLimiter.joinsExceededReason)]))
            connection.close(.goingAway, reason: "too many joins per second")
            return
        }
        let now = WallClock.seconds()
        let check = session.tokenToVerify(for: message, connectionToken: connection.token).map { token in
            // The socket's own token was verified at the upgrade.
            token == connection.token ? TokenVerifier.recheck(connection.claims, now: now) : services.verifier.verify(token, now: now)
        }
        let newChannel =
            message.event == "phx_join"
            ? NewChannel(subscriber: SubscriberID(services.hub.makeID()), generatedPresenceKey: UUID().uuidString.lowercased()) : nil
        run(session.handle(message, token: check, newChannel: newChannel, now: .now)[...], context: context)
    }

    /// What the session has to do after an action that waited for the database.
    private enum Outcome: Sendable {
        case done
        /// The policies refused a private join.
        case refuseJoin(ChannelJoin, reply: PhoenixMessage)
        /// A refreshed token may no longer read the private channel.
        case failChannel(topic: String, message: String)
    }

    /// Performs actions in order; one that has to wait for the database suspends the socket's message handling
    /// until it is done, then the rest run.
    private func run(_ actions: ArraySlice<SessionAction>, context: ChannelHandlerContext) {
        var actions = actions
        while let action = actions.popFirst() {
            guard let wait = perform(action) else { continue }
            suspended = true
            context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
            let handler = NIOLoopBound(self, eventLoop: context.eventLoop)
            let contextBox = NIOLoopBound(context, eventLoop: context.eventLoop)
            let rest = actions
            let loop = context.eventLoop
            Task {
                let outcome = await wait()
                loop.execute { handler.value.resume(outcome, then: rest, context: contextBox.value) }
            }
            return
        }
    }

    private func resume(_ outcome: Outcome, then actions: ArraySlice<SessionAction>, context: ChannelHandlerContext) {
        suspended = false
        guard active else { return }
        switch outcome {
        case .done:
            break
        case .refuseJoin(let channel, let reply):
            run(session.refuse(channel, reply: reply, reason: SocketSession.unauthorizedRead(channel))[...], context: context)
        case .failChannel(let topic, let message):
            run(session.fail(topic: topic, message: message)[...], context: context)
        }
        if !suspended { run(actions, context: context) }
        while !suspended, let next = waiting.popFirst() {
            handle(next.bytes, binary: next.binary, context: context)
        }
        if !suspended { context.channel.setOption(ChannelOptions.autoRead, value: true).whenFailure { _ in } }
    }

    /// Does one action at once, or returns the part that has to wait for the database.
    private func perform(_ action: SessionAction) -> (@Sendable () async -> Outcome)? {
        let hub = services.hub
        let policies = services.policies
        let changes = services.changes
        let connection = self.connection
        switch action {
        case .send(let message):
            connection.send(message)
        case .join(let join, let reply):
            guard join.config.isPrivate || !join.bindings.isEmpty else {
                hub.join(join, reply: reply, connection: connection, resolution: nil)
                return nil
            }
            return {
                var access = ChannelAccess.everything
                if join.config.isPrivate {
                    let read = await policies.read(join)
                    guard read.broadcast || read.presence else { return .refuseJoin(join, reply: reply) }
                    access = .private(broadcastRead: read.broadcast, presenceRead: read.presence)
                }
                let resolution = join.bindings.isEmpty ? nil : await hub.resolve(join.bindings, role: join.claims.role)
                if let resume = hub.join(join, reply: reply, connection: connection, resolution: resolution, access: access) {
                    await changes.replay(resume)
                }
                return .done
            }
        case .leave(let subscriber):
            hub.leave(subscriber)
        case .refreshClaims(let subscriber, let claims):
            let bindings = hub.updateClaims(subscriber, claims: claims) ?? []
            guard let (join, _) = hub.access(of: subscriber), join.config.isPrivate || !bindings.isEmpty else { return nil }
            return {
                if join.config.isPrivate {
                    let read = await policies.read(join)
                    guard read.broadcast || read.presence else { return .failChannel(topic: join.topic, message: SocketSession.unauthorizedRead(join)) }
                    hub.updateReadAccess(subscriber, broadcast: read.broadcast, presence: read.presence)
                }
                if !bindings.isEmpty, let report = hub.resubscribe(subscriber, resolution: await hub.resolve(bindings, role: claims.role)) {
                    connection.send(report)
                }
                return .done
            }
        case .broadcast(let message, let ack):
            // Private channels send only what the write policy allows; a refusal is silent, as upstream.
            return whenAllowed(.broadcast, on: message.sender, isPrivate: message.topic.isPrivate) { allowed in
                guard allowed else { return }
                hub.broadcast(message)
                if let ack { connection.send(ack) }
            }
        case .track(let subscriber, let payload, let reply):
            guard let (join, _) = hub.access(of: subscriber) else { return nil }
            return whenAllowed(.presence, on: subscriber, isPrivate: join.config.isPrivate) { allowed in
                guard allowed else {
                    connection.send(.reply(to: reply.ref, joinRef: reply.joinRef, topic: reply.topic, status: "error", response: [:]))
                    return
                }
                hub.track(subscriber, payload: payload)
                connection.send(reply)
            }
        case .untrack(let subscriber):
            hub.untrack(subscriber)
        }
        return nil
    }

    /// Runs `body` with the channel's write permission for `ext`: at once on a public channel or when the policies
    /// were asked before, else after asking them (the answer is kept until the token changes).
    private func whenAllowed(
        _ ext: ChannelAccess.Extension,
        on subscriber: SubscriberID?,
        isPrivate: Bool,
        _ body: @escaping @Sendable (Bool) -> Void
    ) -> (@Sendable () async -> Outcome)? {
        let hub = services.hub
        let policies = services.policies
        guard isPrivate, let subscriber else {
            body(true)
            return nil
        }
        guard let (join, access) = hub.access(of: subscriber) else { return nil }
        if let allowed = access.write(ext) {
            body(allowed)
            return nil
        }
        return {
            let allowed = await policies.mayWrite(join, ext)
            hub.rememberWrite(subscriber, extension: ext, allowed: allowed)
            body(allowed)
            return .done
        }
    }
}
