import NIOCore

/// How the payload bytes of a user broadcast are to be read.
public enum BinaryPayloadEncoding: UInt8, Sendable, Hashable {
    /// Raw bytes, delivered to clients as an `ArrayBuffer` / `Data`.
    case binary = 0
    /// UTF-8 JSON text.
    case json = 1
}

/// A V2 binary WebSocket frame (protocol reference §1.3).
///
/// Layouts: every header string is preceded (all lengths first) by a one-byte length, so each is at most
/// 255 UTF-8 bytes; the payload is whatever follows the header. An empty `joinRef`/`ref` on the wire is
/// read as `nil` (clients write `null` refs as empty strings). The server accepts kinds 0 and 3 and
/// emits only kind 4: the official clients decode nothing else.
public enum BinaryFrame: Sendable, Hashable {
    /// Kind 0, client → server: a push whose payload is opaque bytes (JSON text from Realtime clients).
    case push(joinRef: String?, ref: String?, topic: String, event: String, payload: ByteBuffer)
    /// Kind 3, client → server: a `broadcast` push carrying a user event. `metadata` is the optional JSON
    /// object of the header (`nil` when its length is 0); the server decodes but ignores it.
    case userBroadcastPush(
        joinRef: String?,
        ref: String?,
        topic: String,
        event: String,
        metadata: JSONObject?,
        encoding: BinaryPayloadEncoding,
        payload: ByteBuffer
    )
    /// Kind 4, server → client: a user broadcast. `metadata` (`nil` ⇒ length 0) is `{"id":…}` for
    /// database-originated messages.
    case userBroadcast(
        topic: String,
        event: String,
        metadata: JSONObject?,
        encoding: BinaryPayloadEncoding,
        payload: ByteBuffer
    )

    /// Which side sent a frame: it decides which kinds are acceptable.
    public enum Sender: Sendable, Hashable {
        /// Kinds 0 and 3 (what the server reads).
        case client
        /// Kind 4 (what test clients and the load generator read).
        case server
    }

    /// A header string, named in errors.
    public enum Field: Sendable, Hashable {
        case joinRef, ref, topic, event, metadata
    }

    private enum Kind {
        static let push: UInt8 = 0
        static let userBroadcastPush: UInt8 = 3
        static let userBroadcast: UInt8 = 4
    }
}

/// Why a binary frame could not be decoded or encoded.
public enum BinaryFrameError: Error, Sendable, Hashable {
    /// A binary message with no bytes at all.
    case emptyFrame
    /// The first byte names a kind this sender may not send (or no kind at all).
    case unsupportedKind(UInt8)
    /// The frame ends inside its fixed-size header (kind, lengths, encoding).
    case truncatedHeader
    /// A header string's declared length runs past the end of the frame.
    case fieldExceedsFrame(BinaryFrame.Field)
    /// A header string is not valid UTF-8.
    case invalidUTF8(BinaryFrame.Field)
    /// The metadata is not a JSON object.
    case invalidMetadata
    /// Encoding only: a header string longer than 255 UTF-8 bytes cannot be framed.
    case fieldTooLong(BinaryFrame.Field, byteCount: Int)
}

// MARK: - Decoding

extension BinaryFrame {
    /// Decodes one binary WebSocket message. Never traps: any malformed input is a `BinaryFrameError`.
    /// Payloads are slices of `frame` (no copy).
    public init(decoding frame: ByteBuffer, sentBy sender: Sender) throws(BinaryFrameError) {
        guard let kind = frame.getInteger(at: frame.readerIndex, as: UInt8.self) else { throw .emptyFrame }
        switch (sender, kind) {
        case (.client, Kind.push):
            var header = try HeaderReader(frame: frame, lengthCount: 4, hasEncoding: false)
            self = .push(
                joinRef: try header.readOptionalString(.joinRef),
                ref: try header.readOptionalString(.ref),
                topic: try header.readString(.topic),
                event: try header.readString(.event),
                payload: header.payload
            )
        case (.client, Kind.userBroadcastPush):
            var header = try HeaderReader(frame: frame, lengthCount: 5, hasEncoding: true)
            self = .userBroadcastPush(
                joinRef: try header.readOptionalString(.joinRef),
                ref: try header.readOptionalString(.ref),
                topic: try header.readString(.topic),
                event: try header.readString(.event),
                metadata: try header.readMetadata(),
                encoding: header.encoding,
                payload: header.payload
            )
        case (.server, Kind.userBroadcast):
            var header = try HeaderReader(frame: frame, lengthCount: 3, hasEncoding: true)
            self = .userBroadcast(
                topic: try header.readString(.topic),
                event: try header.readString(.event),
                metadata: try header.readMetadata(),
                encoding: header.encoding,
                payload: header.payload
            )
        default:
            throw .unsupportedKind(kind)
        }
    }
}

/// Walks a frame's header: `kind, length…, [encoding], string…, payload`. Lengths are read one at a
/// time, each paired with the next string, so no length table is allocated.
private struct HeaderReader {
    private let frame: ByteBuffer
    private var nextLengthIndex: Int
    private let encodingIndex: Int?
    private var nextFieldIndex: Int

    init(frame: ByteBuffer, lengthCount: Int, hasEncoding: Bool) throws(BinaryFrameError) {
        let fixedSize = 1 + lengthCount + (hasEncoding ? 1 : 0)
        guard frame.readableBytes >= fixedSize else { throw .truncatedHeader }
        self.frame = frame
        nextLengthIndex = frame.readerIndex + 1
        encodingIndex = hasEncoding ? frame.readerIndex + 1 + lengthCount : nil
        nextFieldIndex = frame.readerIndex + fixedSize
    }

    /// Realtime's rule: 0 is binary, anything else is JSON.
    var encoding: BinaryPayloadEncoding {
        guard let index = encodingIndex, frame.getInteger(at: index, as: UInt8.self) == 0 else { return .json }
        return .binary
    }

    /// Everything after the last header string.
    var payload: ByteBuffer {
        frame.getSlice(at: nextFieldIndex, length: frame.writerIndex - nextFieldIndex) ?? ByteBuffer()
    }

    private mutating func readField(_ field: BinaryFrame.Field) throws(BinaryFrameError) -> ByteBuffer {
        guard let length = frame.getInteger(at: nextLengthIndex, as: UInt8.self) else { throw .truncatedHeader }
        guard let slice = frame.getSlice(at: nextFieldIndex, length: Int(length)) else {
            throw .fieldExceedsFrame(field)
        }
        nextLengthIndex += 1
        nextFieldIndex += Int(length)
        return slice
    }

    mutating func readString(_ field: BinaryFrame.Field) throws(BinaryFrameError) -> String {
        let bytes = try readField(field)
        let string = bytes.withUnsafeReadableBytes { String(validating: $0, as: UTF8.self) }
        guard let string else { throw .invalidUTF8(field) }
        return string
    }

    mutating func readOptionalString(_ field: BinaryFrame.Field) throws(BinaryFrameError) -> String? {
        let string = try readString(field)
        return string.isEmpty ? nil : string
    }

    mutating func readMetadata() throws(BinaryFrameError) -> JSONObject? {
        let bytes = try readField(.metadata)
        guard bytes.readableBytes > 0 else { return nil }
        guard let value = try? JSONValue.parse(bytes.readableBytesView), let object = value.objectValue else {
            throw .invalidMetadata
        }
        return object
    }
}

// MARK: - Encoding

extension BinaryFrame {
    /// Appends the frame's bytes to `buffer`. Kinds 0 and 3 are written in their client → server layout
    /// (for test clients); the server itself only ever encodes `.userBroadcast`.
    /// Throws `fieldTooLong` (leaving `buffer` untouched) when a header string exceeds 255 bytes: the
    /// caller then falls back to a text frame or drops the message.
    public func encode(into buffer: inout ByteBuffer) throws(BinaryFrameError) {
        switch self {
        case .push(let joinRef, let ref, let topic, let event, let payload):
            try Self.write(
                kind: Kind.push,
                header: [(.joinRef, joinRef ?? ""), (.ref, ref ?? ""), (.topic, topic), (.event, event)],
                encoding: nil,
                payload: payload,
                into: &buffer
            )
        case .userBroadcastPush(let joinRef, let ref, let topic, let event, let metadata, let encoding, let payload):
            try Self.write(
                kind: Kind.userBroadcastPush,
                header: [
                    (.joinRef, joinRef ?? ""), (.ref, ref ?? ""), (.topic, topic), (.event, event),
                    (.metadata, Self.metadataText(metadata)),
                ],
                encoding: encoding,
                payload: payload,
                into: &buffer
            )
        case .userBroadcast(let topic, let event, let metadata, let encoding, let payload):
            try Self.write(
                kind: Kind.userBroadcast,
                header: [(.topic, topic), (.event, event), (.metadata, Self.metadataText(metadata))],
                encoding: encoding,
                payload: payload,
                into: &buffer
            )
        }
    }

    private static func metadataText(_ metadata: JSONObject?) -> String {
        guard let metadata else { return "" }
        return JSONValue.object(metadata).jsonString
    }

    private static func write(
        kind: UInt8,
        header: [(field: Field, text: String)],
        encoding: BinaryPayloadEncoding?,
        payload: ByteBuffer,
        into buffer: inout ByteBuffer
    ) throws(BinaryFrameError) {
        var headerSize = 1 + header.count + (encoding == nil ? 0 : 1)
        for (field, text) in header {
            let count = text.utf8.count
            guard count <= Int(UInt8.max) else { throw .fieldTooLong(field, byteCount: count) }
            headerSize += count
        }
        buffer.reserveCapacity(minimumWritableBytes: headerSize + payload.readableBytes)
        buffer.writeInteger(kind)
        for (_, text) in header {
            buffer.writeInteger(UInt8(truncatingIfNeeded: text.utf8.count))
        }
        if let encoding {
            buffer.writeInteger(encoding.rawValue)
        }
        for (_, text) in header {
            buffer.writeString(text)
        }
        buffer.writeImmutableBuffer(payload)
    }
}
