import HeraldCore
import Logging
import NIOCore
import NIOWebSocket

/// Runs one upgraded WebSocket: reads frames, assembles messages, feeds them to the socket's `SocketSession`
/// and performs the actions it returns. Every outbound frame goes through the socket's `Connection`.
struct SocketHandler: Sendable {
    let hub: Hub
    let verifier: TokenVerifier
    let maxMessageBytes: Int

    func serve(_ socket: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, version: SerializerVersion, token: String, logger: Logger) async {
        let connection = Connection(id: hub.makeID(), version: version, token: token, channel: socket.channel, now: WallClock.milliseconds())
        var logger = logger
        logger[metadataKey: "connection"] = "\(connection.id)"
        hub.register(connection)
        var session = SocketSession(version: version)
        do {
            try await socket.executeThenClose { inbound, _ in
                var assembler = MessageAssembler(maxBytes: maxMessageBytes)
                for try await frame in inbound {
                    connection.touch(now: WallClock.milliseconds())
                    switch frame.opcode {
                    case .ping:
                        connection.sendPong(frame.unmaskedData)
                    case .connectionClose:
                        var data = frame.unmaskedData
                        let code = data.readWebSocketErrorCode() ?? .normalClosure
                        connection.close(code)
                        return
                    case .text, .binary, .continuation:
                        switch assembler.append(frame) {
                        case .incomplete:
                            continue
                        case .tooLarge:
                            logger.info("closing socket: inbound message over the size limit")
                            connection.close(.messageTooLarge)
                            return
                        case .protocolError:
                            connection.close(.protocolError)
                            return
                        case .message(let binary, let bytes):
                            await handle(bytes, binary: binary, session: &session, connection: connection, logger: logger)
                        }
                    default:
                        continue
                    }
                }
            }
        } catch {
            logger.debug("socket ended", metadata: ["error": "\(error)"])
        }
        for action in session.close() { await perform(action, connection: connection) }
        hub.unregister(connection)
    }

    private func handle(_ bytes: ByteBuffer, binary: Bool, session: inout SocketSession, connection: Connection, logger: Logger) async {
        guard !binary else {
            logger.debug("dropped a binary frame")
            return
        }
        let message: InboundMessage
        do {
            message = try InboundMessage.decode(text: bytes.readableBytesView, version: session.version)
        } catch {
            logger.info("dropped a malformed message", metadata: ["reason": "\(error.reason)"])
            return
        }
        let check = session.tokenToVerify(for: message, connectionToken: connection.token).map {
            verifier.verify($0, now: WallClock.seconds())
        }
        let actions = session.handle(message, token: check, newSubscriber: SubscriberID(hub.makeID()))
        for action in actions { await perform(action, connection: connection) }
    }

    private func perform(_ action: SessionAction, connection: Connection) async {
        switch action {
        case .send(let message): connection.send(message)
        case .join(let join, let reply):
            let report = await hub.join(join, connection: connection)
            connection.send(reply)
            if let report { connection.send(report) }
        case .leave(let subscriber):
            hub.leave(subscriber)
        case .refreshClaims(let subscriber, let claims):
            if let report = await hub.refresh(subscriber, claims: claims) { connection.send(report) }
        }
    }
}

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
