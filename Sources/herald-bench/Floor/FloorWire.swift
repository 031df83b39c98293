import NIOCore

/// The floor server's side of the wire, as pure functions: the upgrade request, unmasking client frames, and the
/// frames it writes.
enum FloorWire {
    /// A room named in the upgrade URL (`/floor/<topic>,+<topic>`: `+` marks a room whose sender gets its own
    /// messages back).
    struct Membership: Equatable {
        var topic: String
        var includesSender: Bool
    }

    struct Request: Equatable {
        var rooms: [Membership]
        var key: String
    }

    /// The rooms and `Sec-WebSocket-Key` of a `GET /floor/…` request head (without the blank line); nil otherwise.
    static func request(head: String) -> Request? {
        let lines = head.split(separator: "\r\n")
        guard let requestLine = lines.first else { return nil }
        let words = requestLine.split(separator: " ")
        guard words.count == 3, words[0] == "GET", words[1].hasPrefix("/floor/") else { return nil }
        let rooms = words[1].dropFirst("/floor/".count).split(separator: ",").map { room in
            room.hasPrefix("+") ? Membership(topic: String(room.dropFirst()), includesSender: true) : Membership(topic: String(room), includesSender: false)
        }
        let keyHeader = lines.dropFirst().first { $0.lowercased().hasPrefix("sec-websocket-key:") }
        guard !rooms.isEmpty, let key = keyHeader?.dropFirst("sec-websocket-key:".count).drop(while: { $0 == " " }) else { return nil }
        return Request(rooms: rooms, key: String(key))
    }

    static func switchingProtocols(key: String) -> String {
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(SHA1.webSocketAccept(key: key))\r\n\r\n"
    }

    static let badRequest = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

    /// Unmasks a client frame's payload in place (`frame` as `WebSocketWire.serverFrame` found it: the 4-byte key
    /// right before the payload when the mask bit is set).
    static func unmask(_ bytes: UnsafeMutableRawBufferPointer, frameStart: Int, payload: Range<Int>) {
        guard bytes[frameStart + 1] & 0x80 != 0 else { return }
        let key = payload.lowerBound - 4
        for index in payload {
            bytes[index] ^= bytes[key + (index - payload.lowerBound) % 4]
        }
    }

    /// Herald's frame for a broadcast push `[join_ref,ref,"topic","broadcast",{…}]`: the same with both refs null,
    /// `[null,null,"topic","broadcast",{…}]`, as one unmasked text frame. `topicStart` is where the topic's
    /// characters start (after its quote).
    static func broadcastFrame(push: UnsafeRawBufferPointer, topicStart: Int, allocator: ByteBufferAllocator) -> ByteBuffer {
        let rest = UnsafeRawBufferPointer(rebasing: push[(topicStart - 1)...])
        let prefix = "[null,null,"
        var frame = allocator.buffer(capacity: 10 + prefix.utf8.count + rest.count)
        writeServerFrameHeader(length: prefix.utf8.count + rest.count, into: &frame)
        frame.writeString(prefix)
        frame.writeBytes(rest)
        return frame
    }

    /// Herald's answer to a heartbeat with ref `ref`.
    static func heartbeatReply(ref: UnsafeRawBufferPointer.SubSequence, allocator: ByteBufferAllocator) -> ByteBuffer {
        let text = #"[null,""# + String(decoding: ref, as: UTF8.self) + #"","phoenix","phx_reply",{"status":"ok","response":{}}]"#
        var frame = allocator.buffer(capacity: 4 + text.utf8.count)
        writeServerFrameHeader(length: text.utf8.count, into: &frame)
        frame.writeString(text)
        return frame
    }

    /// FIN + text, unmasked.
    static func writeServerFrameHeader(length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(0x81))
        switch length {
        case 0..<126:
            buffer.writeInteger(UInt8(length))
        case 126..<65536:
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }
}
