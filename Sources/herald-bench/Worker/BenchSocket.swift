import NIOCore

/// One client WebSocket of the generator and the only handler of its channel: it performs the upgrade, reads
/// server frames straight out of the receive buffers (no copies, no JSON decoding), counts them in its worker's
/// report and writes Phoenix V2 pushes (to Herald and the floor; nchan's subscribers only read, and keep alive
/// with WebSocket pings). Lives on its worker's event loop.
final class BenchSocket: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum State {
        case connecting
        case upgrading
        case open
        case closed
    }

    let member: Int
    let group: SocketGroup
    /// Its shared room first (presence and churn use it), then its echo room if any.
    let rooms: [Room]
    let connectStartedAt: UInt64
    private unowned let worker: LoadWorker
    private let joinOnOpen: Bool
    private var context: ChannelHandlerContext?
    /// Bytes of a frame whose end has not arrived yet.
    private var unread: ByteBuffer?
    private(set) var state = State.connecting
    private var closedByUs = false
    /// The join ref of each room's current join.
    private var joinRefs: [Int]
    private var lastRef = 0
    /// The room the next publish goes to (a socket in several rooms publishes into each in turn).
    private var nextRoom = 0
    /// While connecting: replies still awaited before the socket is ready (the join's, then the track's).
    /// Nil once the outcome of the setup was reported.
    private var setupRepliesAwaited: Int? = 0
    /// Storm: the members this socket's presence has shown, and how many there are in all.
    private var seen: MemberSet?

    var isOpen: Bool { state == .open }

    private var topic: String { rooms[0].topic }
    private var target: Target { worker.plan.target }

    init(member: Int, group: SocketGroup, worker: LoadWorker, joinOnOpen: Bool, now: UInt64) {
        self.member = member
        self.group = group
        self.rooms = group.rooms(of: member)
        self.joinRefs = Array(repeating: 0, count: rooms.count)
        self.worker = worker
        self.joinOnOpen = joinOnOpen
        self.connectStartedAt = now
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        state = .upgrading
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: worker.upgradeRequest(for: self))), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        worker.report.bytesReceived += incoming.readableBytes
        if var buffered = unread {
            unread = nil
            buffered.writeBuffer(&incoming)
            process(&buffered)
        } else {
            process(&incoming)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        finishSetup(ready: false)
        if !closedByUs { worker.report.serverCloses += 1 }
        worker.socketClosed(self)
        self.context = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// The TCP connection could not be made.
    func connectFailed() {
        state = .closed
        finishSetup(ready: false)
    }

    /// Still not ready long after connecting: counted as failed and closed.
    func setupTimedOut() {
        guard setupRepliesAwaited != nil else { return }
        finishSetup(ready: false)
        close()
    }

    // MARK: Reading

    private func process(_ buffer: inout ByteBuffer) {
        if state == .upgrading {
            switch WebSocketWire.readUpgradeAnswer(&buffer) {
            case .incomplete:
                keepUnread(buffer)
                return
            case .refused:
                finishSetup(ready: false)
                close()
                return
            case .switched:
                state = .open
                opened()
            }
        }
        let now = Monotonic.nanoseconds()
        let consumed = buffer.withUnsafeReadableBytes { bytes in
            var offset = 0
            while let frame = WebSocketWire.serverFrame(in: bytes, at: offset) {
                received(opcode: frame.opcode, UnsafeRawBufferPointer(rebasing: bytes[frame.payload]), now: now)
                offset = frame.end
            }
            return offset
        }
        buffer.moveReaderIndex(forwardBy: consumed)
        if buffer.readableBytes > 0 { keepUnread(buffer) }
    }

    private func keepUnread(_ buffer: ByteBuffer) {
        var buffer = buffer
        buffer.discardReadBytes()
        unread = buffer
    }

    private func received(opcode: UInt8, _ bytes: UnsafeRawBufferPointer, now: UInt64) {
        switch WebSocketWire.Opcode(rawValue: opcode) {
        case .text where target == .nchan:
            receivedMessage(bytes, now: now)
        case .text:
            receivedText(bytes, now: now)
        case .binary where target == .nchan:
            receivedMessage(bytes, now: now)
        case .binary:
            // Kind 4: a user broadcast.
            guard bytes.first == 4 else {
                worker.report.unreadableFrames += 1
                return
            }
            recordBroadcastLatency(bytes, from: 0, now: now)
            worker.delivered(at: now)
        case .close:
            worker.report.serverCloses += 1
            close()
        case .ping:
            write { WebSocketWire.writeClientFrame(.pong, payload: bytes, into: &$0) }
        case .pong:
            worker.report.heartbeatReplies += 1
        default:
            worker.report.unreadableFrames += 1
        }
    }

    /// nchan sends the published message as it is: the payload with its send time.
    private func receivedMessage(_ bytes: UnsafeRawBufferPointer, now: UInt64) {
        guard FrameScanner.firstIndex(of: Markers.broadcastSentAt, in: bytes, range: 0..<bytes.count) != nil else {
            worker.report.unreadableFrames += 1
            return
        }
        recordBroadcastLatency(bytes, from: 0, now: now)
        worker.delivered(at: now)
    }

    private func receivedText(_ bytes: UnsafeRawBufferPointer, now: UInt64) {
        guard let head = FrameScanner.v2Head(bytes) else {
            worker.report.unreadableFrames += 1
            return
        }
        let payload = head.payloadStart..<bytes.count
        switch head.event {
        case .presenceDiff:
            worker.delivered(at: now)
            let joins = FrameScanner.joinsSection(of: bytes, payloadStart: head.payloadStart)
            FrameScanner.forEachTrackedMeta(in: bytes, range: joins) { sentAt, member in
                if member != UInt64(self.member) { worker.report.latency.record(from: sentAt, to: now) }
                seen?.insert(Int(member))
            }
            checkConvergence(now: now)
        case .presenceState:
            worker.report.stateFrames += 1
            guard seen != nil else { return }
            FrameScanner.forEachInteger(after: Markers.member, in: bytes, range: payload) { seen?.insert(Int($0)) }
            checkConvergence(now: now)
        case .broadcast, .postgresChanges:
            // A change's row carries the writer's clock in its `bt` column, as broadcasts carry theirs.
            recordBroadcastLatency(bytes, from: head.payloadStart, now: now)
            worker.delivered(at: now)
        case .reply:
            receivedReply(bytes, head: head)
        case .system:
            if FrameScanner.firstIndex(of: Markers.statusError, in: bytes, range: payload) != nil {
                worker.report.systemErrors += 1
            }
        case .error:
            worker.report.systemErrors += 1
        case .close, .other:
            break
        }
    }

    private func receivedReply(_ bytes: UnsafeRawBufferPointer, head: FrameScanner.V2Head) {
        let ok = FrameScanner.replyIsOK(bytes, payloadStart: head.payloadStart)
        if !ok { worker.report.errorReplies += 1 }
        guard let ref = head.ref, let kind = ClientMessages.RefKind(rawValue: bytes[ref.lowerBound]) else { return }
        switch kind {
        case .heartbeat:
            worker.report.heartbeatReplies += 1
        case .join, .track:
            guard let awaited = setupRepliesAwaited, awaited > 0 else { return }
            if !ok {
                finishSetup(ready: false)
            } else if awaited == 1 {
                finishSetup(ready: true)
            } else {
                setupRepliesAwaited = awaited - 1
            }
        case .leave:
            break
        }
    }

    /// Before `worker.delivered`, which may end the phase (and take its report) with this very delivery.
    private func recordBroadcastLatency(_ bytes: UnsafeRawBufferPointer, from start: Int, now: UInt64) {
        guard let marker = FrameScanner.firstIndex(of: Markers.broadcastSentAt, in: bytes, range: start..<bytes.count),
            let (sentAt, _) = FrameScanner.integer(in: bytes, at: marker + Markers.broadcastSentAt.count)
        else { return }
        worker.report.latency.record(from: sentAt, to: now)
    }

    private func checkConvergence(now: UInt64) {
        guard let seen, seen.isComplete else { return }
        self.seen = nil
        worker.socketConverged(self, at: now)
    }

    // MARK: Setup

    /// Herald's sockets join their rooms; the peers took them from the URL.
    private func opened() {
        guard joinOnOpen, target == .herald else {
            finishSetup(ready: true)
            return
        }
        setupRepliesAwaited = rooms.count + (group.presence ? 1 : 0)
        join(at: Monotonic.nanoseconds())
    }

    /// Reports the outcome of connecting (once).
    private func finishSetup(ready: Bool) {
        guard setupRepliesAwaited != nil else { return }
        setupRepliesAwaited = nil
        worker.socketSetUp(self, ready: ready)
    }

    // MARK: Writing

    /// Joins the socket's rooms (presence in the first); with presence, tracks right after (the server handles a
    /// socket's pushes in order).
    private func join(at now: UInt64) {
        write { buffer in
            for (index, room) in rooms.enumerated() {
                joinRefs[index] = nextRef()
                // postgres_changes bindings (and the channel's token) go with the first room's join.
                let join = ClientMessages.join(
                    topic: room.topic,
                    joinRef: joinRefs[index],
                    presenceKey: index == 0 ? presenceKey : nil,
                    selfBroadcast: room.selfDelivery,
                    postgresChanges: index == 0 ? group.changes?.bindings(of: member) ?? "[]" : "[]",
                    accessToken: index == 0 ? group.changes?.token(of: member) : nil
                )
                WebSocketWire.writeClientFrame(.text, text: join, into: &buffer)
            }
            if group.presence { writeTrack(at: now, into: &buffer) }
        }
    }

    /// Storm: joins and tracks now, then watches its presence until it shows all `members`.
    func joinStorm(at now: UInt64, members: Int) {
        seen = MemberSet(count: members)
        join(at: now)
    }

    /// Churn: leaves the room, joins it again and tracks, in one write.
    func rejoin(at now: UInt64) {
        write { buffer in
            WebSocketWire.writeClientFrame(.text, text: ClientMessages.leave(topic: topic, joinRef: joinRefs[0], ref: nextRef()), into: &buffer)
            joinRefs[0] = nextRef()
            let join = ClientMessages.join(topic: topic, joinRef: joinRefs[0], presenceKey: presenceKey, selfBroadcast: rooms[0].selfDelivery)
            WebSocketWire.writeClientFrame(.text, text: join, into: &buffer)
            writeTrack(at: now, into: &buffer)
        }
    }

    /// Churn: a track with a new send time, which the server reports as an update (a leave and a join).
    func retrack(at now: UInt64) {
        write { writeTrack(at: now, into: &$0) }
    }

    /// Publishes one message into the socket's next room: a push on the socket, or for nchan an HTTP POST on one
    /// of the worker's publisher connections. Returns the room, nil when nothing could be sent.
    func publish(at now: UInt64, payloadBytes: Int, binary: Bool) -> Room? {
        guard state == .open else { return nil }
        let index = nextRoom
        nextRoom = (nextRoom + 1) % rooms.count
        let room = rooms[index]
        let payload = ClientMessages.broadcastPayload(sentAt: now, size: payloadBytes)
        if target == .nchan {
            return worker.post(payload, to: room.topic) ? room : nil
        }
        write { buffer in
            if binary {
                ClientMessages.writeBinaryBroadcast(topic: room.topic, joinRef: joinRefs[index], payload: payload, into: &buffer)
            } else {
                let push = ClientMessages.textBroadcast(topic: room.topic, joinRef: joinRefs[index], payload: payload)
                WebSocketWire.writeClientFrame(.text, text: push, into: &buffer)
            }
        }
        return room
    }

    /// A Phoenix heartbeat; nchan's subscribers may not send messages, so theirs is a WebSocket ping.
    func heartbeat() {
        if target == .nchan {
            write { WebSocketWire.writeClientFrame(.ping, payload: [], into: &$0) }
        } else {
            write { WebSocketWire.writeClientFrame(.text, text: ClientMessages.heartbeat(ref: nextRef()), into: &$0) }
        }
    }

    /// Sends a close frame (1000) and closes the connection.
    func close() {
        guard state != .closed, let context else { return }
        closedByUs = true
        if state == .open {
            write { WebSocketWire.writeClientFrame(.close, payload: [0x03, 0xE8], into: &$0) }
        }
        state = .closed
        context.close(promise: nil)
    }

    private var presenceKey: String? { group.presence ? group.presenceKey(of: member) : nil }

    private func writeTrack(at now: UInt64, into buffer: inout ByteBuffer) {
        let track = ClientMessages.track(topic: topic, joinRef: joinRefs[0], ref: nextRef(), sentAt: now, member: member)
        WebSocketWire.writeClientFrame(.text, text: track, into: &buffer)
    }

    private func nextRef() -> Int {
        lastRef += 1
        return lastRef
    }

    private func write(_ body: (inout ByteBuffer) -> Void) {
        guard state == .open, let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: 256)
        body(&buffer)
        context.writeAndFlush(wrapOutboundOut(buffer), promise: nil)
    }
}

/// A set of member numbers `0..<count` as a bitmap, with its size kept.
struct MemberSet {
    private var words: [UInt64]
    private let count: Int
    private(set) var size = 0

    init(count: Int) {
        self.count = count
        words = Array(repeating: 0, count: (count + 63) / 64)
    }

    var isComplete: Bool { size == count }

    mutating func insert(_ member: Int) {
        guard member >= 0, member < count else { return }
        let bit: UInt64 = 1 << UInt64(member % 64)
        guard words[member / 64] & bit == 0 else { return }
        words[member / 64] |= bit
        size += 1
    }
}
