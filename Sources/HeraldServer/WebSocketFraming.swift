import NIOCore
import NIOWebSocket

/// Server-to-client WebSocket frames as finished bytes (RFC 6455 section 5.2: unmasked, FIN set). A fan-out frame is
/// framed once and the same buffer is written to every recipient, so a delivery allocates and copies nothing.
enum WebSocketFraming {
    /// Header and payload in one buffer, so one frame is one iovec in the socket's `writev`.
    static func frame(_ payload: ByteBuffer, opcode: WebSocketOpcode) -> ByteBuffer {
        let length = payload.readableBytes
        var frame = ByteBuffer()
        frame.reserveCapacity(length + 10)
        frame.writeInteger(0x80 | UInt8(webSocketOpcode: opcode))
        switch length {
        case ..<126:
            frame.writeInteger(UInt8(length))
        case ...Int(UInt16.max):
            frame.writeInteger(UInt8(126))
            frame.writeInteger(UInt16(length))
        default:
            frame.writeInteger(UInt8(127))
            frame.writeInteger(UInt64(length))
        }
        frame.writeImmutableBuffer(payload)
        return frame
    }

    static func text(_ payload: ByteBuffer) -> ByteBuffer { frame(payload, opcode: .text) }

    /// A close frame: the status code, then an optional UTF-8 reason (at most 123 bytes, so the frame stays a
    /// control frame of 125 bytes or less).
    static func close(_ code: WebSocketErrorCode, reason: String) -> ByteBuffer {
        var payload = ByteBuffer()
        payload.write(webSocketErrorCode: code)
        payload.writeBytes(reason.utf8.prefix(123))
        return frame(payload, opcode: .connectionClose)
    }
}
