/// Identifies one joined channel (one join on one socket) across Herald's indexes.
public struct SubscriberID: Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64
    public init(_ rawValue: UInt64) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
}

/// The verified content of a JWT.
public struct TokenClaims: Sendable, Equatable {
    public var role: String
    /// `exp`, seconds since the Unix epoch.
    public var expiresAt: Int64
    public var claims: JSONObject

    public init(role: String, expiresAt: Int64, claims: JSONObject) {
        self.role = role
        self.expiresAt = expiresAt
        self.claims = claims
    }
}

/// The outcome of verifying a token; `code` and `message` are upstream's (`MalformedJWT`, `The token provided is
/// not a valid JWT`).
public enum TokenCheck: Sendable, Equatable {
    case valid(TokenClaims)
    case expired(secondsAgo: Int64)
    case invalid(code: String, message: String)

    /// The message of a refused join or refresh (`system` messages carry it without the code).
    public var failure: (code: String, message: String)? {
        switch self {
        case .valid: nil
        case .expired(let seconds): ("InvalidJWTToken", "Token has expired \(seconds) seconds ago")
        case .invalid(let code, let message): (code, message)
        }
    }
}

/// Where broadcasts and presence of a channel go: public and private channels of the same name are apart.
public struct TopicKey: Hashable, Sendable {
    public var subTopic: String
    public var isPrivate: Bool

    public init(subTopic: String, isPrivate: Bool) {
        self.subTopic = subTopic
        self.isPrivate = isPrivate
    }
}

/// What a join needs from its owner: a fresh subscriber id, and the presence key to use when the client gave none.
public struct NewChannel: Sendable, Equatable {
    public var subscriber: SubscriberID
    public var generatedPresenceKey: String

    public init(subscriber: SubscriberID, generatedPresenceKey: String) {
        self.subscriber = subscriber
        self.generatedPresenceKey = generatedPresenceKey
    }
}

/// What the server must do for a joined channel.
public struct ChannelJoin: Sendable, Equatable {
    public var subscriber: SubscriberID
    /// The full topic, `realtime:<subTopic>`.
    public var topic: String
    public var subTopic: String
    public var joinRef: String?
    public var config: JoinConfig
    public var bindings: [BindingRequest]
    public var claims: TokenClaims
    /// `config.presence.key`, or a generated one.
    public var presenceKey: String

    public var topicKey: TopicKey { TopicKey(subTopic: subTopic, isPrivate: config.isPrivate) }
}

/// A message for every channel of a topic.
public struct BroadcastMessage: Sendable, Equatable {
    public enum Content: Sendable, Equatable {
        /// A JSON `broadcast` push: the client's payload object, relayed verbatim (already encoded).
        case json([UInt8])
        /// A user broadcast (V2 binary kind 3, REST single event, database): `event` and raw or JSON payload bytes.
        case user(event: String, encoding: BinaryPayloadEncoding, payload: [UInt8], metadata: JSONObject?)
    }

    public var topic: TopicKey
    /// The sending channel, left out unless `includeSender`.
    public var sender: SubscriberID?
    public var includeSender: Bool
    public var content: Content

    public init(topic: TopicKey, sender: SubscriberID?, includeSender: Bool, content: Content) {
        self.topic = topic
        self.sender = sender
        self.includeSender = includeSender
        self.content = content
    }
}

/// Per-socket limits with upstream's defaults (reference section 6.4).
public struct SessionLimits: Sendable, Equatable {
    /// Broadcast and presence payloads above this many bytes are refused.
    public var maxPayloadBytes: Int = 3_000_000
    /// Channels one socket may have joined at once (`ChannelRateLimitReached: Too many channels` beyond).
    public var maxChannels: Int = 100
    /// Broadcasts and presence pushes one channel may send per second; over it the channel closes with
    /// `Too many messages per second`.
    public var maxEventsPerSecond: Int = 1_000
    public var presenceCallsPerWindow: Int = 5
    public var presenceWindow: Duration = .seconds(30)

    public init() {}
}

/// The I/O a socket session asks its owner to perform, in order.
public enum SessionAction: Sendable, Equatable {
    /// Write this message to the socket.
    case send(PhoenixMessage)
    /// Register the channel with the hub, then send `reply`. The hub subscribes the postgres_changes bindings
    /// before the reply goes out, so every change committed after the client sees the reply reaches it.
    case join(ChannelJoin, reply: PhoenixMessage)
    /// Forget the channel everywhere.
    case leave(SubscriberID)
    /// The channel's claims changed (token refresh): re-subscribe with them.
    case refreshClaims(SubscriberID, TokenClaims)
    /// Fan a broadcast out to its topic, then send `ack` if any. On a private channel both depend on the write policy:
    /// refused, the broadcast is dropped without a reply, as upstream does.
    case broadcast(BroadcastMessage, ack: PhoenixMessage?)
    /// Track (or update) the channel's presence with this payload, then send `reply` (an ok reply; on a private
    /// channel whose write policy refuses presence, an error reply `{}` instead and no track).
    case track(SubscriberID, payload: JSONObject, reply: PhoenixMessage)
    /// Remove the channel's presence.
    case untrack(SubscriberID)
}

/// Per-socket protocol decisions (Phoenix channel semantics, reference sections 1.4-1.7 and 2): the socket owner
/// feeds decoded messages in and executes the returned actions. No I/O, no clock reads.
public struct SocketSession: Sendable {
    public let version: SerializerVersion
    public let limits: SessionLimits
    public private(set) var channels: [String: ChannelJoin] = [:]
    private var presenceLimiters: [String: WindowRateLimiter] = [:]
    private var eventLimiters: [String: WindowRateLimiter] = [:]

    public init(version: SerializerVersion, limits: SessionLimits = SessionLimits()) {
        self.version = version
        self.limits = limits
    }

    /// Whether handling `message` needs a token check first, and of which token.
    public func tokenToVerify(for message: PhoenixMessage, connectionToken: String) -> String? {
        switch message.event {
        case "phx_join" where message.topic.hasPrefix("realtime:"):
            return JoinConfig.channelToken(message.payload) ?? connectionToken
        case "access_token" where channels[message.topic] != nil:
            guard let token = message.payload["access_token"]?.stringValue, !token.hasPrefix("sb_") else { return nil }
            return token
        default:
            return nil
        }
    }

    /// Handles one client message. `token` is the result of verifying `tokenToVerify(...)`; `newChannel` is required
    /// by joins (`phx_join`) only.
    public mutating func handle(
        _ message: PhoenixMessage,
        token: TokenCheck?,
        newChannel: NewChannel?,
        now: ContinuousClock.Instant
    ) -> [SessionAction] {
        if message.topic == "phoenix" && message.event == "heartbeat" {
            return [.send(.reply(to: message.ref, joinRef: nil, topic: "phoenix", status: "ok", response: [:]))]
        }
        switch message.event {
        case "phx_join":
            return join(message, token: token, newChannel: newChannel)
        case "phx_leave":
            return leave(message)
        default:
            break
        }
        guard let channel = channels[message.topic] else {
            return [.send(.reply(to: message.ref, joinRef: nil, topic: message.topic, status: "error", response: ["reason": "unmatched topic"]))]
        }
        if message.event == "broadcast" || message.event == "presence", !allowEvent(on: channel.topic, now: now) {
            return fail(topic: channel.topic, message: WindowRateLimiter.eventsExceededMessage)
        }
        switch message.event {
        case "access_token":
            return refreshToken(channel, token: token)
        case "broadcast":
            return broadcast(channel, ref: message.ref, content: .json(message.payload.jsonBytes))
        case "presence":
            return presence(channel, message, now: now)
        default:
            // Unknown events on a joined channel are ignored, as upstream does.
            return []
        }
    }

    /// Handles a V2 binary user broadcast (kind 3).
    public mutating func handleUserBroadcast(
        topic: String,
        ref: String?,
        event: String,
        encoding: BinaryPayloadEncoding,
        payload: [UInt8],
        now: ContinuousClock.Instant
    ) -> [SessionAction] {
        guard let channel = channels[topic] else {
            return [.send(.reply(to: ref, joinRef: nil, topic: topic, status: "error", response: ["reason": "unmatched topic"]))]
        }
        guard allowEvent(on: topic, now: now) else { return fail(topic: topic, message: WindowRateLimiter.eventsExceededMessage) }
        return broadcast(channel, ref: ref, content: .user(event: event, encoding: encoding, payload: payload, metadata: nil))
    }

    private mutating func allowEvent(on topic: String, now: ContinuousClock.Instant) -> Bool {
        var limiter = eventLimiters[topic] ?? WindowRateLimiter(maxCalls: limits.maxEventsPerSecond, window: .seconds(1))
        let allowed = limiter.allowCall(at: now)
        eventLimiters[topic] = limiter
        return allowed
    }

    /// Relays to the topic; with `ack` the sender gets an ok reply once the message is handed to fan-out.
    private func broadcast(_ channel: ChannelJoin, ref: String?, content: BroadcastMessage.Content) -> [SessionAction] {
        let size =
            switch content {
            case .json(let bytes): bytes.count
            case .user(let event, _, let payload, _): payload.count + event.utf8.count
            }
        let ack = channel.config.broadcastAck
        guard size <= limits.maxPayloadBytes else {
            return ack ? [.send(Self.reply(channel, ref: ref, status: "error", response: "payload_size_exceeded"))] : []
        }
        let message = BroadcastMessage(
            topic: channel.topicKey,
            sender: channel.subscriber,
            includeSender: channel.config.broadcastSelf,
            content: content
        )
        return [.broadcast(message, ack: ack ? Self.reply(channel, ref: ref, status: "ok", response: [:]) : nil)]
    }

    /// `track` / `untrack` (reference section 5.1); always answered, fatal when over the rate or size limit.
    private mutating func presence(_ channel: ChannelJoin, _ message: PhoenixMessage, now: ContinuousClock.Instant) -> [SessionAction] {
        var limiter = presenceLimiters[channel.topic] ?? WindowRateLimiter(maxCalls: limits.presenceCallsPerWindow, window: limits.presenceWindow)
        let allowed = limiter.allowCall(at: now)
        presenceLimiters[channel.topic] = limiter
        guard allowed else { return fail(topic: channel.topic, message: WindowRateLimiter.presenceExceededMessage) }
        let okReply = Self.reply(channel, ref: message.ref, status: "ok", response: [:])
        let ok = SessionAction.send(okReply)
        guard let event = message.payload["event"]?.stringValue else { return [ok] }
        switch event.lowercased() {
        case "track":
            guard case .object(let payload) = message.payload["payload"] ?? .object([:]) else {
                return [.send(Self.reply(channel, ref: message.ref, status: "error", response: ["reason": "Presence track payload must be a map"]))]
            }
            guard JSONValue.object(payload).jsonBytes.count <= limits.maxPayloadBytes else {
                return fail(topic: channel.topic, message: "Track message size exceeded")
            }
            return [.track(channel.subscriber, payload: payload, reply: okReply)]
        case "untrack":
            return [.untrack(channel.subscriber), ok]
        default:
            return [.send(Self.reply(channel, ref: message.ref, status: "error", response: [:]))]
        }
    }

    /// Replies on a channel carry the channel's join_ref, whatever (possibly stale) join_ref the push had.
    static func reply(_ channel: ChannelJoin, ref: String?, status: String, response: JSONValue) -> PhoenixMessage {
        .reply(to: ref, joinRef: channel.joinRef, topic: channel.topic, status: status, response: response)
    }

    /// A join the database's policies refused (a private channel the token may not read): the channel is forgotten and
    /// the join gets an error reply instead of `reply`.
    public mutating func refuse(_ channel: ChannelJoin, reply: PhoenixMessage, reason: String) -> [SessionAction] {
        if channels[channel.topic]?.subscriber == channel.subscriber {
            channels[channel.topic] = nil
            presenceLimiters[channel.topic] = nil
            eventLimiters[channel.topic] = nil
        }
        return [.send(.reply(to: reply.ref, joinRef: reply.joinRef, topic: channel.topic, status: "error", response: ["reason": .string(reason)]))]
    }

    /// The reason upstream gives when a token may not read a private channel.
    public static func unauthorizedRead(_ channel: ChannelJoin) -> String {
        "Unauthorized: You do not have permissions to read from this Channel topic: \(channel.subTopic)"
    }

    /// The socket is gone: every channel leaves.
    public mutating func close() -> [SessionAction] {
        let actions = channels.values.map { SessionAction.leave($0.subscriber) }
        channels.removeAll()
        presenceLimiters.removeAll()
        eventLimiters.removeAll()
        return actions
    }

    /// Closes one channel from the server side with a fatal `system` error (e.g. token expired).
    public mutating func fail(topic: String, extension ext: String = "system", message: String) -> [SessionAction] {
        guard let channel = channels.removeValue(forKey: topic) else { return [] }
        presenceLimiters[topic] = nil
        eventLimiters[topic] = nil
        return [
            .send(Self.system(channel, extension: ext, status: "error", message: message)),
            .send(Self.close(channel)),
            .leave(channel.subscriber),
        ]
    }

    private mutating func join(_ message: PhoenixMessage, token: TokenCheck?, newChannel: NewChannel?) -> [SessionAction] {
        func refuse(_ reason: String) -> [SessionAction] {
            [.send(.reply(to: message.ref, joinRef: message.joinRef, topic: message.topic, status: "error", response: ["reason": .string(reason)]))]
        }
        guard message.topic.hasPrefix("realtime:") else {
            return [.send(.reply(to: message.ref, joinRef: nil, topic: message.topic, status: "error", response: ["reason": "unmatched topic"]))]
        }
        guard let newChannel else { return refuse("Unknown Error on Channel") }
        let subTopic = String(message.topic.dropFirst("realtime:".count))
        guard !subTopic.isEmpty else { return refuse("TopicNameRequired: You must provide a topic name") }
        let claims: TokenClaims
        switch token {
        case .valid(let verified)?: claims = verified
        case let check?:
            let failure = check.failure ?? ("MalformedJWT", "The token provided is not a valid JWT")
            return refuse("\(failure.code): \(failure.message)")
        case nil: return refuse("MalformedJWT: The token provided is not a valid JWT")
        }
        let config = JoinConfig(payload: message.payload)
        if channels[message.topic] == nil && channels.count >= limits.maxChannels {
            return refuse("ChannelRateLimitReached: Too many channels")
        }
        var actions: [SessionAction] = []
        presenceLimiters[message.topic] = nil
        eventLimiters[message.topic] = nil
        if let previous = channels.removeValue(forKey: message.topic) {
            // Duplicate join: the old channel closes first, then the new join proceeds.
            actions.append(.leave(previous.subscriber))
            actions.append(.send(Self.close(previous)))
        }
        let bindings = config.postgresChanges.map(BindingRequest.init(raw:))
        let channel = ChannelJoin(
            subscriber: newChannel.subscriber,
            topic: message.topic,
            subTopic: subTopic,
            joinRef: message.joinRef,
            config: config,
            bindings: bindings,
            claims: claims,
            presenceKey: config.presenceKey ?? newChannel.generatedPresenceKey
        )
        channels[message.topic] = channel
        let reply = PhoenixMessage.reply(
            to: message.ref,
            joinRef: message.joinRef,
            topic: message.topic,
            status: "ok",
            response: ["postgres_changes": .array(bindings.map(\.echo))]
        )
        actions.append(.join(channel, reply: reply))
        return actions
    }

    private mutating func leave(_ message: PhoenixMessage) -> [SessionAction] {
        let ok = PhoenixMessage.reply(to: message.ref, joinRef: message.joinRef, topic: message.topic, status: "ok", response: [:])
        guard let channel = channels.removeValue(forKey: message.topic) else { return [.send(ok)] }
        presenceLimiters[message.topic] = nil
        eventLimiters[message.topic] = nil
        return [.leave(channel.subscriber), .send(ok), .send(Self.close(channel))]
    }

    private mutating func refreshToken(_ channel: ChannelJoin, token: TokenCheck?) -> [SessionAction] {
        switch token {
        case nil:
            return []  // null, sb_ keys: ignored
        case .valid(let claims)?:
            guard claims != channel.claims else { return [] }
            channels[channel.topic]?.claims = claims
            return [.refreshClaims(channel.subscriber, claims)]
        case let check?:
            return fail(topic: channel.topic, message: check.failure?.message ?? "The token provided is not a valid JWT")
        }
    }

    /// A `system` push on a channel (reference section 2.5).
    public static func system(_ channel: ChannelJoin, extension ext: String, status: String, message: String) -> PhoenixMessage {
        PhoenixMessage(
            joinRef: channel.joinRef,
            ref: nil,
            topic: channel.topic,
            event: "system",
            payload: ["extension": .string(ext), "status": .string(status), "message": .string(message), "channel": .string(channel.subTopic)]
        )
    }

    /// `phx_close` carries `ref = join_ref` so clients accept it.
    public static func close(_ channel: ChannelJoin) -> PhoenixMessage {
        PhoenixMessage(joinRef: channel.joinRef, ref: channel.joinRef, topic: channel.topic, event: "phx_close", payload: [:])
    }
}
