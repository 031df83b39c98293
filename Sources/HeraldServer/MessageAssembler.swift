import NIOCore
import NIOWebSocket

/// Joins fragmented WebSocket frames into messages, bounded in size.
struct MessageAssembler {
    enum Result {
        case incomplete
        case message(binary: Bool, ByteBuffer)
        case tooLarge
        case protocolError
    }

    let maxBytes: Int
    private var pending: ByteBuffer?
    private var pendingBinary = false

    init(maxBytes: Int) { self.maxBytes = maxBytes }

    mutating func append(_ frame: WebSocketFrame) -> Result {
        let data = frame.unmaskedData
        switch (frame.opcode, pending) {
        case (.continuation, nil), (.text, _?), (.binary, _?):
            return .protocolError
        case (.continuation, var buffer?):
            guard buffer.readableBytes + data.readableBytes <= maxBytes else { return .tooLarge }
            buffer.writeImmutableBuffer(data)
            pending = frame.fin ? nil : buffer
            return frame.fin ? .message(binary: pendingBinary, buffer) : .incomplete
        default:
            guard data.readableBytes <= maxBytes else { return .tooLarge }
            if frame.fin { return .message(binary: frame.opcode == .binary, data) }
            pending = data
            pendingBinary = frame.opcode == .binary
            return .incomplete
        }
    }
}
