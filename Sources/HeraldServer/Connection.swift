import HeraldCore
import NIOCore
import NIOWebSocket
import Synchronization

/// One client socket as the rest of Herald sees it: a place to write frames to, from any thread. Frames written
/// through one `Connection` reach the socket in the order `send` was called (NIO runs them on the channel's
/// event loop in submission order).
final class Connection: Sendable {
    let id: UInt64
    let version: SerializerVersion
    /// The token given at connect time; channels without an `access_token` use it.
    let token: String
    private let channel: any Channel
    /// Milliseconds since the epoch of the last inbound frame, for the idle sweep.
    private let lastInbound: Atomic<Int64>
    private let closing = Atomic<Bool>(false)

    init(id: UInt64, version: SerializerVersion, token: String, channel: any Channel, now: Int64) {
        self.id = id
        self.version = version
        self.token = token
        self.channel = channel
        self.lastInbound = Atomic(now)
    }

    var lastInboundMilliseconds: Int64 { lastInbound.load(ordering: .relaxed) }

    func touch(now: Int64) { lastInbound.store(now, ordering: .relaxed) }

    var eventLoop: any EventLoop { channel.eventLoop }

    /// Writes one text frame (or a binary one) whose bytes may be shared with other connections.
    func send(_ bytes: ByteBuffer, binary: Bool = false) {
        guard !closing.load(ordering: .relaxed) else { return }
        let frame = WebSocketFrame(fin: true, opcode: binary ? .binary : .text, data: bytes)
        channel.writeAndFlush(frame, promise: nil)
    }

    /// Fan-out path, on the channel's event loop: queue a frame without flushing; `flushOnLoop` sends the batch
    /// in as few syscalls as the kernel allows.
    func writeOnLoop(_ bytes: ByteBuffer, binary: Bool) {
        guard !closing.load(ordering: .relaxed) else { return }
        channel.write(WebSocketFrame(fin: true, opcode: binary ? .binary : .text, data: bytes), promise: nil)
    }

    func flushOnLoop() { channel.flush() }

    func send(_ message: PhoenixMessage) {
        send(message.encode(version))
    }

    func sendPong(_ data: ByteBuffer) {
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .pong, data: data), promise: nil)
    }

    /// Sends a close frame and then closes the TCP connection. Only the first call has an effect (and returns true).
    @discardableResult
    func close(_ code: WebSocketErrorCode, reason: String = "") -> Bool {
        guard !closing.exchange(true, ordering: .relaxed) else { return false }
        var data = channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        let channel = self.channel
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)).whenComplete { _ in
            channel.close(promise: nil)
        }
        return true
    }

    /// Bytes written to the channel but not yet accepted by the kernel. A writable channel is below NIO's high
    /// water mark, so only a backed-up one costs a trip to its event loop.
    func bufferedBytes() async -> Int {
        guard !channel.isWritable else { return 0 }
        return (try? await channel.getOption(ChannelOptions.bufferedWritableBytes).get()) ?? 0
    }
}
