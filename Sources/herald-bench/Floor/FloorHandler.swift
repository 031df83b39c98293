import NIOCore

/// One socket of the floor server: the upgrade, then broadcast pushes fanned out to the sender's room and
/// heartbeats answered. Everything runs on the server's one event loop.
final class FloorHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let rooms: FloorRooms
    private var context: ChannelHandlerContext?
    private var unread: ByteBuffer?
    private var memberships: [FloorWire.Membership] = []
    private var upgraded = false

    init(rooms: FloorRooms) {
        self.rooms = rooms
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if var buffered = unread {
            unread = nil
            buffered.writeBuffer(&incoming)
            process(&buffered, context: context)
        } else {
            process(&incoming, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        for membership in memberships { rooms.remove(self, from: membership.topic) }
        memberships = []
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Writes a frame of the room this socket is in, and flushes.
    func send(_ frame: ByteBuffer) {
        context?.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    private func process(_ buffer: inout ByteBuffer, context: ChannelHandlerContext) {
        if !upgraded {
            let view = buffer.readableBytesView
            guard let end = view.firstRange(of: Self.headTerminator) else { return keep(buffer) }
            let head = String(decoding: view[view.startIndex..<end.lowerBound], as: UTF8.self)
            buffer.moveReaderIndex(forwardBy: end.upperBound - view.startIndex)
            guard let request = FloorWire.request(head: head) else {
                context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: FloorWire.badRequest)), promise: nil)
                context.close(promise: nil)
                return
            }
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: FloorWire.switchingProtocols(key: request.key))), promise: nil)
            upgraded = true
            memberships = request.rooms
            for membership in memberships { rooms.add(self, to: membership.topic) }
        }
        let consumed = buffer.withUnsafeMutableReadableBytes { bytes in
            var offset = 0
            while let frame = WebSocketWire.serverFrame(in: UnsafeRawBufferPointer(bytes), at: offset) {
                FloorWire.unmask(bytes, frameStart: offset, payload: frame.payload)
                received(opcode: frame.opcode, UnsafeRawBufferPointer(rebasing: bytes[frame.payload]), context: context)
                offset = frame.end
            }
            return offset
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        if buffer.readableBytes > 0 { keep(buffer) }
    }

    private static let headTerminator = Array("\r\n\r\n".utf8)

    private func keep(_ buffer: ByteBuffer) {
        var buffer = buffer
        buffer.discardReadBytes()
        unread = buffer
    }

    private func received(opcode: UInt8, _ payload: UnsafeRawBufferPointer, context: ChannelHandlerContext) {
        switch WebSocketWire.Opcode(rawValue: opcode) {
        case .text:
            guard let head = FrameScanner.v2Head(payload) else { return }
            let topic = payload[head.topic]
            if topic.elementsEqual("phoenix".utf8), let ref = head.ref {
                send(FloorWire.heartbeatReply(ref: payload[ref], allocator: context.channel.allocator))
            } else if head.event == .broadcast, let membership = memberships.first(where: { topic.elementsEqual($0.topic.utf8) }) {
                let frame = FloorWire.broadcastFrame(push: payload, topicStart: head.topic.lowerBound, allocator: context.channel.allocator)
                rooms.send(frame, to: membership.topic, from: self, includingSender: membership.includesSender)
            }
        case .ping:
            var pong = context.channel.allocator.buffer(capacity: 2 + payload.count)
            pong.writeInteger(UInt8(0x8A))
            pong.writeInteger(UInt8(payload.count))
            pong.writeBytes(payload)
            send(pong)
        case .close:
            context.close(promise: nil)
        default:
            break
        }
    }
}
