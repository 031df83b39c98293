import NIOCore

/// The client side of RFC 6455 on raw bytes: the upgrade request, the 101 answer, masked client frames and
/// unmasked server frames. A load generator with thousands of sockets on one thread needs no more than this.
enum WebSocketWire {
    enum Opcode: UInt8 {
        case continuation = 0x0
        case text = 0x1
        case binary = 0x2
        case close = 0x8
        case ping = 0x9
        case pong = 0xA
    }

    static func upgradeRequest(host: String, port: Int, target: String) -> String {
        "GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    }

    enum UpgradeAnswer: Equatable {
        /// The head is not complete yet.
        case incomplete
        case switched
        case refused(status: Int)
    }

    /// Reads the HTTP answer head from `buffer`, consuming it when complete.
    static func readUpgradeAnswer(_ buffer: inout ByteBuffer) -> UpgradeAnswer {
        let view = buffer.readableBytesView
        guard let end = view.firstRange(of: headTerminator) else { return .incomplete }
        let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
        buffer.moveReaderIndex(forwardBy: end.upperBound - view.startIndex)
        let status = head.split(separator: " ", maxSplits: 2).dropFirst().first.flatMap { Int($0) } ?? 0
        return status == 101 ? .switched : .refused(status: status)
    }

    private static let headTerminator = Array("\r\n\r\n".utf8)

    /// Appends one masked client frame holding `payload` to `buffer`. The masking key is zero: the server still
    /// unmasks every byte, and the generator saves the work of masking.
    static func writeClientFrame(_ opcode: Opcode, payload: some Collection<UInt8>, into buffer: inout ByteBuffer) {
        writeClientFrameHeader(opcode, length: payload.count, into: &buffer)
        buffer.writeBytes(payload)
    }

    static func writeClientFrame(_ opcode: Opcode, text: String, into buffer: inout ByteBuffer) {
        writeClientFrameHeader(opcode, length: text.utf8.count, into: &buffer)
        buffer.writeString(text)
    }

    static func writeClientFrameHeader(_ opcode: Opcode, length: Int, into buffer: inout ByteBuffer) {
        buffer.writeInteger(0x80 | opcode.rawValue)
        switch length {
        case 0..<126:
            buffer.writeInteger(0x80 | UInt8(length))
        case 126..<65536:
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(length))
        default:
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(length))
        }
        buffer.writeInteger(UInt32(0))
    }

    struct ServerFrame {
        var opcode: UInt8
        var payload: Range<Int>
        /// Where the next frame starts.
        var end: Int
    }

    /// The complete server frame starting at `offset`, or nil when its bytes have not all arrived. Server frames
    /// are never masked; a masking key, if any, is skipped (the harness reads, it does not unmask).
    static func serverFrame(in bytes: UnsafeRawBufferPointer, at offset: Int) -> ServerFrame? {
        guard bytes.count - offset >= 2 else { return nil }
        let first = bytes[offset]
        let second = bytes[offset + 1]
        var length = Int(second & 0x7F)
        var header = 2
        if length == 126 {
            guard bytes.count - offset >= 4 else { return nil }
            length = Int(bytes[offset + 2]) << 8 | Int(bytes[offset + 3])
            header = 4
        } else if length == 127 {
            guard bytes.count - offset >= 10 else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(bytes[offset + $1]) } & Int.max
            header = 10
        }
        if second & 0x80 != 0 { header += 4 }
        guard bytes.count - offset - header >= length else { return nil }
        let start = offset + header
        return ServerFrame(opcode: first & 0x0F, payload: start..<(start + length), end: start + length)
    }
}
