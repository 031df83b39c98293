import NIOCore

/// A keep-alive HTTP/1.1 connection that POSTs messages to nchan's publisher location (`/pub/<channel>`), pipelined:
/// requests go out as the pacer issues them and the answers are only counted, never awaited. Lives on its worker's
/// event loop.
final class HTTPPublisher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let host: String
    private let port: Int
    private var context: ChannelHandlerContext?
    private(set) var isOpen = false
    /// The connection could not be made or was closed: not used again.
    private(set) var isGone = false

    init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        isOpen = !isGone
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // nchan answers 201/202 with a short text body; the deliveries tell whether the message went out.
    }

    func channelInactive(context: ChannelHandlerContext) {
        connectFailed()
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func connectFailed() {
        isOpen = false
        isGone = true
    }

    /// Sends one POST; false when the connection is not open.
    func post(_ message: String, channel: Substring) -> Bool {
        guard isOpen, let context else { return false }
        var buffer = context.channel.allocator.buffer(capacity: 128 + message.utf8.count)
        buffer.writeString("POST /pub/\(channel) HTTP/1.1\r\nHost: \(host):\(port)\r\nContent-Length: \(message.utf8.count)\r\n\r\n")
        buffer.writeString(message)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
        return true
    }
}
