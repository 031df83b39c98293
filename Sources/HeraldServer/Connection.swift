import HeraldCore
import NIOCore
import NIOWebSocket
import Synchronization

/// One client socket as the rest of Herald sees it: a place to write finished WebSocket frames to, from any thread.
/// Frames written through one `Connection` reach the socket in the order they were written (off the socket's event
/// loop they are handed to it as tasks, which run in submission order).
final class Connection: Sendable {
    let id: UInt64
    let version: SerializerVersion
    /// The token given at connect time; channels without an `access_token` use it.
    let token: String
    /// The claims of `token`, verified at the upgrade: joins with the same token only recheck its expiry.
    let claims: TokenClaims
    let eventLoop: any EventLoop
    private let channel: any Channel
    /// Where finished frames enter the pipeline: the context of NIO's frame encoder, so writes go straight to the
    /// socket without being framed again (`ChannelHandlerContext.write` passes to the next handler toward the head).
    private let rawWriter: NIOLoopBound<ChannelHandlerContext>
    /// Milliseconds since the epoch of the last inbound frame, for the idle sweep.
    private let lastInbound: Atomic<Int64>
    private let closing = Atomic<Bool>(false)

    /// Call on the channel's event loop, once the WebSocket pipeline is in place.
    init(id: UInt64, version: SerializerVersion, token: String, claims: TokenClaims, channel: any Channel, rawWriter: ChannelHandlerContext, now: Int64) {
        self.id = id
        self.version = version
        self.token = token
        self.claims = claims
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.rawWriter = NIOLoopBound(rawWriter, eventLoop: channel.eventLoop)
        self.lastInbound = Atomic(now)
    }

    var lastInboundMilliseconds: Int64 { lastInbound.load(ordering: .relaxed) }

    func touch(now: Int64) { lastInbound.store(now, ordering: .relaxed) }

    var isClosing: Bool { closing.load(ordering: .relaxed) }

    /// Fan-out path, on the channel's event loop: queues a finished frame without flushing; `flushOnLoop` then sends
    /// everything queued in as few syscalls as the kernel allows.
    func writeOnLoop(_ frame: ByteBuffer) {
        guard !closing.load(ordering: .relaxed) else { return }
        rawWriter.value.write(NIOAny(frame), promise: nil)
    }

    func flushOnLoop() { rawWriter.value.flush() }

    /// Writes and flushes finished frames from any thread.
    func send(frames: [ByteBuffer]) {
        guard !frames.isEmpty else { return }
        if eventLoop.inEventLoop {
            for frame in frames { writeOnLoop(frame) }
            flushOnLoop()
        } else {
            eventLoop.execute {
                for frame in frames { self.writeOnLoop(frame) }
                self.flushOnLoop()
            }
        }
    }

    func send(_ messages: [PhoenixMessage]) {
        send(frames: messages.map { WebSocketFraming.text($0.encode(version)) })
    }

    func send(_ message: PhoenixMessage) { send([message]) }

    func sendPong(_ data: ByteBuffer) {
        send(frames: [WebSocketFraming.frame(data, opcode: .pong)])
    }

    /// Sends a close frame and then closes the TCP connection, at the latest after `closeGrace` (a peer that stopped
    /// reading never takes the frame). Only the first call has an effect (and returns true).
    @discardableResult
    func close(_ code: WebSocketErrorCode, reason: String = "") -> Bool {
        guard !closing.exchange(true, ordering: .relaxed) else { return false }
        let frame = WebSocketFraming.close(code, reason: reason)
        let channel = self.channel
        let rawWriter = self.rawWriter
        eventLoop.execute {
            let deadline = channel.eventLoop.scheduleTask(in: Self.closeGrace) { channel.close(promise: nil) }
            rawWriter.value.writeAndFlush(NIOAny(frame)).whenComplete { _ in
                deadline.cancel()
                channel.close(promise: nil)
            }
        }
        return true
    }

    static let closeGrace = TimeAmount.seconds(2)

    /// Bytes queued for the socket and not yet taken by the kernel; on the channel's event loop.
    func bufferedBytesOnLoop() -> Int {
        (try? channel.syncOptions?.getOption(ChannelOptions.bufferedWritableBytes)) ?? 0
    }

    /// Closes the TCP connection without a close frame (the peer is gone or broke the protocol).
    func abort() {
        closing.store(true, ordering: .relaxed)
        channel.close(promise: nil)
    }
}
