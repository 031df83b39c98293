import NIOCore

/// The serializer a socket negotiated with `vsn`: V1 speaks JSON objects, V2 JSON arrays and binary frames.
public enum SerializerVersion: Sendable, Hashable {
    case v1
    case v2

    /// Phoenix matches `~> 1.0.0` / `~> 2.0.0`; a missing `vsn` means 1.0.0, anything else is refused.
    public init?(vsn: String?) {
        guard let vsn else {
            self = .v1
            return
        }
        let parts = vsn.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCIIDigit) }) else { return nil }
        switch (parts[0], parts[1]) {
        case ("1", "0"): self = .v1
        case ("2", "0"): self = .v2
        default: return nil
        }
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}

/// A Phoenix channel message, in either direction. Received: text frames of either version and V2 binary kind 0.
/// Sent: `joinRef` is only written by V2 (V1 never carries it).
public struct PhoenixMessage: Sendable, Equatable {
    public var joinRef: String?
    public var ref: String?
    public var topic: String
    public var event: String
    public var payload: JSONValue

    public init(joinRef: String?, ref: String?, topic: String, event: String, payload: JSONValue) {
        self.joinRef = joinRef
        self.ref = ref
        self.topic = topic
        self.event = event
        self.payload = payload
    }
}

/// Why a client frame was dropped.
public struct FrameDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

extension PhoenixMessage {
    /// Decodes a text frame: a V1 object `{topic, event, payload, ref, join_ref?}` or a V2 array
    /// `[join_ref, ref, topic, event, payload, ...]`.
    public static func decode(text bytes: some Collection<UInt8>, version: SerializerVersion) throws(FrameDecodingError) -> PhoenixMessage {
        let value: JSONValue
        do {
            value = try JSONValue.parse(bytes)
        } catch {
            throw FrameDecodingError("malformed JSON: \(error.reason)")
        }
        switch version {
        case .v1:
            guard case .object(let object) = value else { throw FrameDecodingError("a V1 frame must be a JSON object") }
            guard case .string(let topic)? = object["topic"] else { throw FrameDecodingError("missing or non-string topic") }
            guard case .string(let event)? = object["event"] else { throw FrameDecodingError("missing or non-string event") }
            guard let payload = object["payload"] else { throw FrameDecodingError("missing payload") }
            guard let ref = object["ref"] else { throw FrameDecodingError("missing ref") }
            return PhoenixMessage(
                joinRef: try refString(object["join_ref"] ?? .null),
                ref: try refString(ref),
                topic: topic,
                event: event,
                payload: payload
            )
        case .v2:
            guard case .array(let elements) = value, elements.count >= 5 else {
                throw FrameDecodingError("a V2 text frame must be an array of 5 elements")
            }
            guard case .string(let topic) = elements[2] else { throw FrameDecodingError("non-string topic") }
            guard case .string(let event) = elements[3] else { throw FrameDecodingError("non-string event") }
            return PhoenixMessage(
                joinRef: try refString(elements[0]),
                ref: try refString(elements[1]),
                topic: topic,
                event: event,
                payload: elements[4]
            )
        }
    }

    /// Refs are strings; numbers are accepted and echoed as their text, null means absent.
    private static func refString(_ value: JSONValue) throws(FrameDecodingError) -> String? {
        switch value {
        case .null: return nil
        case .string(let s): return s
        case .number(let n): return n
        default: throw FrameDecodingError("refs must be strings or null")
        }
    }
}

extension PhoenixMessage {
    /// A `phx_reply` with `{"status": status, "response": response}`.
    public static func reply(
        to ref: String?,
        joinRef: String?,
        topic: String,
        status: String,
        response: JSONValue
    ) -> PhoenixMessage {
        PhoenixMessage(
            joinRef: joinRef,
            ref: ref,
            topic: topic,
            event: "phx_reply",
            payload: ["status": .string(status), "response": response]
        )
    }

    public func encode(_ version: SerializerVersion) -> ByteBuffer {
        PhoenixFrame.encode(version, joinRef: joinRef, ref: ref, topic: topic, event: event, payload: payload.jsonBytes)
    }
}

/// Writes text frames around an already encoded payload, so fan-out encodes a payload once for all sockets.
public enum PhoenixFrame {
    public static func encode(
        _ version: SerializerVersion,
        joinRef: String?,
        ref: String?,
        topic: String,
        event: String,
        payload: [UInt8]
    ) -> ByteBuffer {
        var out: [UInt8] = []
        out.reserveCapacity(payload.count + topic.utf8.count + event.utf8.count + 64)
        switch version {
        case .v1:
            out.append(contentsOf: #"{"topic":"#.utf8)
            JSONValue.writeString(topic, to: &out)
            out.append(contentsOf: #","event":"#.utf8)
            JSONValue.writeString(event, to: &out)
            out.append(contentsOf: #","payload":"#.utf8)
            out.append(contentsOf: payload)
            out.append(contentsOf: #","ref":"#.utf8)
            writeOptional(ref, to: &out)
            out.append(UInt8(ascii: "}"))
        case .v2:
            out.append(UInt8(ascii: "["))
            writeOptional(joinRef, to: &out)
            out.append(UInt8(ascii: ","))
            writeOptional(ref, to: &out)
            out.append(UInt8(ascii: ","))
            JSONValue.writeString(topic, to: &out)
            out.append(UInt8(ascii: ","))
            JSONValue.writeString(event, to: &out)
            out.append(UInt8(ascii: ","))
            out.append(contentsOf: payload)
            out.append(UInt8(ascii: "]"))
        }
        return ByteBuffer(bytes: out)
    }

    private static func writeOptional(_ string: String?, to out: inout [UInt8]) {
        if let string { JSONValue.writeString(string, to: &out) } else { out.append(contentsOf: "null".utf8) }
    }
}
