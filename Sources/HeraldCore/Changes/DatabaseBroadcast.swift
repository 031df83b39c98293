/// A broadcast sent from the database (reference section 4.3): one `realtime.messages` row as
/// `realtime.capture_broadcast()` notifies it (sql/realtime/broadcast.sql), the value of the `broadcast` key of
/// `{"broadcast":{"id","topic","event","private","payload","binary_payload"}}`.
public struct DatabaseBroadcast: Sendable, Equatable {
    /// The row id (a uuid), sent to clients as metadata `{"id": …}`.
    public var id: String
    /// The sub-topic: `room1` reaches channels joined to `realtime:room1`.
    public var topic: String
    public var event: String
    /// Private messages reach private channels (`config.private: true`) only, public ones public channels only.
    public var isPrivate: Bool
    public var encoding: BinaryPayloadEncoding
    /// Compact JSON text (`.json`) or the raw bytes (`.binary`).
    public var payload: [UInt8]

    public init(id: String, topic: String, event: String, isPrivate: Bool, encoding: BinaryPayloadEncoding, payload: [UInt8]) {
        self.id = id
        self.topic = topic
        self.event = event
        self.isPrivate = isPrivate
        self.encoding = encoding
        self.payload = payload
    }

    /// Decodes the value of the notification's `broadcast` key. `binary_payload` is unpadded base64url and wins
    /// over `payload`; a row with neither, or without an event, cannot be delivered (as upstream).
    public init(_ value: JSONValue) throws(FrameDecodingError) {
        guard case .string(let id)? = value["id"], case .string(let topic)? = value["topic"] else {
            throw FrameDecodingError("database broadcast lacks id or topic")
        }
        guard case .string(let event)? = value["event"] else {
            throw FrameDecodingError("database broadcast \(id) has no event")
        }
        guard case .bool(let isPrivate)? = value["private"] else {
            throw FrameDecodingError("database broadcast \(id) has no private flag")
        }
        let encoding: BinaryPayloadEncoding
        let payload: [UInt8]
        if case .string(let encoded)? = value["binary_payload"] {
            guard let bytes = Base64URL.decode(encoded[...]) else {
                throw FrameDecodingError("database broadcast \(id) has a malformed binary payload")
            }
            encoding = .binary
            payload = bytes
        } else if let json = value["payload"], !json.isNull {
            encoding = .json
            payload = json.jsonBytes
        } else {
            throw FrameDecodingError("database broadcast \(id) has no payload")
        }
        self.init(id: id, topic: topic, event: event, isPrivate: isPrivate, encoding: encoding, payload: payload)
    }

    /// What the hub fans out: a user broadcast (kind 4 to V2 sockets, JSON with `meta` to V1 sockets) with
    /// metadata `{"id": …}`, to every channel of the topic with the same privacy.
    public var message: BroadcastMessage {
        BroadcastMessage(
            topic: TopicKey(subTopic: topic, isPrivate: isPrivate),
            sender: nil,
            includeSender: true,
            content: .user(event: event, encoding: encoding, payload: payload, metadata: ["id": .string(id)])
        )
    }
}
