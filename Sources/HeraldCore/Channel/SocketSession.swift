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
}

/// The I/O a socket session asks its owner to perform, in order.
public enum SessionAction: Sendable, Equatable {
    /// Write this message to the socket.
    case send(OutboundMessage)
    /// Register the channel with the hub, then send `reply`. The hub subscribes the postgres_changes bindings
    /// before the reply goes out, so every change committed after the client sees the reply reaches it.
    case join(ChannelJoin, reply: OutboundMessage)
    /// Forget the channel everywhere.
    case leave(SubscriberID)
    /// The channel's claims changed (token refresh): re-subscribe with them.
    case refreshClaims(SubscriberID, TokenClaims)
}

/// Per-socket protocol decisions (Phoenix channel semantics, reference sections 1.4-1.7 and 2): the socket owner
/// feeds decoded messages in and executes the returned actions. No I/O, no clock reads.
public struct SocketSession: Sendable {
    public let version: SerializerVersion
    public private(set) var channels: [String: ChannelJoin] = [:]

    public init(version: SerializerVersion) {
        self.version = version
    }

    /// Whether handling `message` needs a token check first, and of which token.
    public func tokenToVerify(for message: InboundMessage, connectionToken: String) -> String? {
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

    /// Handles one client message. `token` is the result of verifying `tokenToVerify(...)`, `newSubscriber` the id a
    /// join will use.
    public mutating func handle(_ message: InboundMessage, token: TokenCheck?, newSubscriber: SubscriberID) -> [SessionAction] {
        if message.topic == "phoenix" && message.event == "heartbeat" {
            return [.send(.reply(to: message.ref, joinRef: nil, topic: "phoenix", status: "ok", response: [:]))]
        }
        switch message.event {
        case "phx_join":
            return join(message, token: token, subscriber: newSubscriber)
        case "phx_leave":
            return leave(message)
        default:
            break
        }
        guard let channel = channels[message.topic] else {
            return [.send(.reply(to: message.ref, joinRef: nil, topic: message.topic, status: "error", response: ["reason": "unmatched topic"]))]
        }
        switch message.event {
        case "access_token":
            return refreshToken(channel, token: token)
        default:
            // Unknown events on a joined channel are ignored, as upstream does.
            return []
        }
    }

    /// The socket is gone: every channel leaves.
    public mutating func close() -> [SessionAction] {
        let actions = channels.values.map { SessionAction.leave($0.subscriber) }
        channels.removeAll()
        return actions
    }

    /// Closes one channel from the server side with a fatal `system` error (e.g. token expired).
    public mutating func fail(topic: String, extension ext: String = "system", message: String) -> [SessionAction] {
        guard let channel = channels.removeValue(forKey: topic) else { return [] }
        return [
            .send(Self.system(channel, extension: ext, status: "error", message: message)),
            .send(Self.close(channel)),
            .leave(channel.subscriber),
        ]
    }

    private mutating func join(_ message: InboundMessage, token: TokenCheck?, subscriber: SubscriberID) -> [SessionAction] {
        func refuse(_ reason: String) -> [SessionAction] {
            [.send(.reply(to: message.ref, joinRef: message.joinRef, topic: message.topic, status: "error", response: ["reason": .string(reason)]))]
        }
        guard message.topic.hasPrefix("realtime:") else {
            return [.send(.reply(to: message.ref, joinRef: nil, topic: message.topic, status: "error", response: ["reason": "unmatched topic"]))]
        }
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
        // Authorization of private channels through RLS comes later; until then only service_role may join them.
        if config.isPrivate && claims.role != "service_role" {
            return refuse("Unauthorized: You do not have permissions to read from this Channel topic: \(subTopic)")
        }
        var actions: [SessionAction] = []
        if let previous = channels.removeValue(forKey: message.topic) {
            // Duplicate join: the old channel closes first, then the new join proceeds.
            actions.append(.leave(previous.subscriber))
            actions.append(.send(Self.close(previous)))
        }
        let bindings = config.postgresChanges.map(BindingRequest.init(raw:))
        let channel = ChannelJoin(
            subscriber: subscriber,
            topic: message.topic,
            subTopic: subTopic,
            joinRef: message.joinRef,
            config: config,
            bindings: bindings,
            claims: claims
        )
        channels[message.topic] = channel
        let reply = OutboundMessage.reply(
            to: message.ref,
            joinRef: message.joinRef,
            topic: message.topic,
            status: "ok",
            response: ["postgres_changes": .array(bindings.map(\.echo))]
        )
        actions.append(.join(channel, reply: reply))
        return actions
    }

    private mutating func leave(_ message: InboundMessage) -> [SessionAction] {
        let ok = OutboundMessage.reply(to: message.ref, joinRef: message.joinRef, topic: message.topic, status: "ok", response: [:])
        guard let channel = channels.removeValue(forKey: message.topic) else { return [.send(ok)] }
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
    public static func system(_ channel: ChannelJoin, extension ext: String, status: String, message: String) -> OutboundMessage {
        OutboundMessage(
            joinRef: channel.joinRef,
            ref: nil,
            topic: channel.topic,
            event: "system",
            payload: ["extension": .string(ext), "status": .string(status), "message": .string(message), "channel": .string(channel.subTopic)]
        )
    }

    /// `phx_close` carries `ref = join_ref` so clients accept it.
    static func close(_ channel: ChannelJoin) -> OutboundMessage {
        OutboundMessage(joinRef: channel.joinRef, ref: channel.joinRef, topic: channel.topic, event: "phx_close", payload: [:])
    }
}
