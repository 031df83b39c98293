/// The REST broadcast endpoints' decisions (reference section 4.2), without HTTP: what to deliver, or which status
/// and body to answer with.
public enum RESTBroadcast {
    /// An answer other than 202.
    public struct Refusal: Error, Sendable, Equatable {
        public var status: Int
        public var body: JSONValue

        public init(status: Int, body: JSONValue) {
            self.status = status
            self.body = body
        }

        public static let unauthorized = Refusal(status: 401, body: ["message": "Unauthorized"])
        public static let forbidden = Refusal(status: 403, body: ["message": "Unauthorized"])
        public static let unsupportedMediaType = Refusal(
            status: 415,
            body: ["error": "Unsupported Media Type. Use application/json or application/octet-stream"]
        )
        public static let payloadTooLarge = Refusal(status: 422, body: ["errors": ["payload": ["Payload size exceeds tenant limit"]]])
    }

    /// `POST /api/broadcast`: `{"messages":[{"topic","event","payload","private"?,"id"?}]}`. Every message is
    /// checked before any is delivered; each one becomes a JSON `broadcast` whose payload is
    /// `{"event","payload","type":"broadcast"}` (+ `"meta":{"id"}` when an id is given). The caller delivers private
    /// messages only to topics the token may write (the others are skipped, the answer is still 202).
    public static func batch(_ body: [UInt8], maxPayloadBytes: Int) -> Result<[BroadcastMessage], Refusal> {
        guard case .object(let root)? = try? JSONValue.parse(body), case .array(let entries)? = root["messages"] else {
            return .failure(Refusal(status: 422, body: ["errors": ["messages": ["can't be blank"]]]))
        }
        var errors: [JSONValue] = []
        var messages: [BroadcastMessage] = []
        for entry in entries {
            var entryErrors = JSONObject()
            let object = entry.objectValue ?? JSONObject()
            for field in ["topic", "event"] where (object[field]?.stringValue ?? "").isEmpty {
                entryErrors[field] = ["can't be blank"]
            }
            let payload = object["payload"]
            if payload?.objectValue == nil { entryErrors["payload"] = ["can't be blank"] }
            var delivered: JSONObject = [
                "event": object["event"] ?? .null, "payload": payload ?? .null, "type": "broadcast",
            ]
            if case .string(let id)? = object["id"] { delivered["meta"] = ["id": .string(id)] }
            let bytes = JSONValue.object(delivered).jsonBytes
            if entryErrors.isEmpty, (payload?.jsonBytes.count ?? 0) > maxPayloadBytes {
                entryErrors["payload"] = ["Payload size exceeds tenant limit"]
            }
            errors.append(.object(entryErrors))
            guard entryErrors.isEmpty, case .string(let topic)? = object["topic"] else { continue }
            let isPrivate = JoinConfig.flexibleBool(object["private"])
            messages.append(
                BroadcastMessage(topic: TopicKey(subTopic: topic, isPrivate: isPrivate), sender: nil, includeSender: true, content: .json(bytes))
            )
        }
        guard errors.allSatisfy({ $0.objectValue?.isEmpty ?? true }) else {
            return .failure(Refusal(status: 422, body: ["errors": ["messages": .array(errors)]]))
        }
        return .success(messages)
    }

    /// `POST /api/broadcast/:topic/events/:event`: the body is JSON (`application/json` or no content type) or
    /// raw bytes (`application/octet-stream`), delivered as a user broadcast (kind 4 to V2 sockets). The caller answers
    /// ``Refusal/forbidden`` for a private message the token may not write.
    public static func single(
        topic: String,
        event: String,
        contentType: String?,
        body: [UInt8],
        isPrivate: Bool,
        maxPayloadBytes: Int
    ) -> Result<BroadcastMessage, Refusal> {
        let mediaType = contentType?.split(separator: ";").first.map { $0.trimmingSpaces.lowercased() }
        let encoding: BinaryPayloadEncoding
        switch mediaType {
        case nil, "application/json":
            guard (try? JSONValue.parse(body)) != nil else {
                return .failure(Refusal(status: 422, body: ["errors": ["payload": ["is invalid"]]]))
            }
            encoding = .json
        case "application/octet-stream":
            encoding = .binary
        default:
            return .failure(.unsupportedMediaType)
        }
        guard body.count <= maxPayloadBytes else { return .failure(.payloadTooLarge) }
        return .success(
            BroadcastMessage(
                topic: TopicKey(subTopic: topic, isPrivate: isPrivate),
                sender: nil,
                includeSender: true,
                content: .user(event: event, encoding: encoding, payload: body, metadata: nil)
            )
        )
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
