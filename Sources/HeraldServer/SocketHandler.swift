import Foundation
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
    let limits: SessionLimits

    func serve(_ socket: NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, version: SerializerVersion, token: String, logger: Logger) async {
        let connection = Connection(id: hub.makeID(), version: version, token: token, channel: socket.channel, now: WallClock.milliseconds())
        var logger = logger
        logger[metadataKey: "connection"] = "\(connection.id)"
        hub.register(connection)
        var session = SocketSession(version: version, limits: limits)
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
        let message: PhoenixMessage
        do {
            if binary {
                guard session.version == .v2 else { throw FrameDecodingError("binary frames need vsn 2.0.0") }
                switch try BinaryFrame(decoding: bytes, sentBy: .client) {
                case .userBroadcastPush(_, let ref, let topic, let event, _, let encoding, let payload):
                    let actions = session.handleUserBroadcast(topic: topic, ref: ref, event: event, encoding: encoding, payload: Array(payload.readableBytesView))
                    for action in actions { await perform(action, connection: connection) }
                    return
                case .push(let joinRef, let ref, let topic, let event, let payload):
                    message = PhoenixMessage(joinRef: joinRef, ref: ref, topic: topic, event: event, payload: try JSONValue.parse(payload.readableBytesView))
                case .userBroadcast:
                    throw FrameDecodingError("clients may not send kind 4")
                }
            } else {
                message = try PhoenixMessage.decode(text: bytes.readableBytesView, version: session.version)
            }
        } catch {
            logger.info("dropped a malformed message", metadata: ["reason": "\(error)"])
            return
        }
        let check = session.tokenToVerify(for: message, connectionToken: connection.token).map {
            verifier.verify($0, now: WallClock.seconds())
        }
        let newChannel =
            message.event == "phx_join"
            ? NewChannel(subscriber: SubscriberID(hub.makeID()), generatedPresenceKey: UUID().uuidString.lowercased()) : nil
        let actions = session.handle(message, token: check, newChannel: newChannel, now: .now)
        for action in actions { await perform(action, connection: connection) }
    }

    private func perform(_ action: SessionAction, connection: Connection) async {
        switch action {
        case .send(let message): connection.send(message)
        case .join(let join, let reply):
            await hub.join(join, reply: reply, connection: connection)
        case .leave(let subscriber):
            hub.leave(subscriber)
        case .refreshClaims(let subscriber, let claims):
            if let report = await hub.refresh(subscriber, claims: claims) { connection.send(report) }
        case .broadcast(let message):
            hub.broadcast(message)
        case .track(let subscriber, let payload):
            hub.track(subscriber, payload: payload)
        case .untrack(let subscriber):
            hub.untrack(subscriber)
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
