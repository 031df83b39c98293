import HTTPTypes
import HeraldCore
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// The server's child channel: HTTP/1.1 with a WebSocket upgrade on the socket paths. Hummingbird's own
/// WebSocket channel answers a refused upgrade with a redirect; upstream clients expect the refusal as an
/// HTTP status with a JSON body, which this channel writes itself. An upgraded socket gets a
/// `SocketSessionHandler` in its pipeline and needs no task of its own.
struct WebSocketUpgradeChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case websocket
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, status: Int, error: String?)
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let maxFrameSize: Int
    /// A socket whose unsent backlog passes this is closed as a slow consumer.
    let maxBufferedBytes: Int
    let sockets: SocketServices
    /// Whether one more socket may connect (`maxConnections`).
    let roomForConnection: @Sendable () -> Bool

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let sockets = self.sockets
            let maxBufferedBytes = self.maxBufferedBytes
            // The refusal decided while the upgrade was attempted, answered once the channel is plain HTTP again.
            let refusal = NIOLoopBoundBox<(status: Int, error: String?)?>(nil, eventLoop: channel.eventLoop)
            let admitted = NIOLoopBoundBox<(version: SerializerVersion, token: String, claims: TokenClaims)?>(nil, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: maxFrameSize,
                // Frame errors are answered by `SocketSessionHandler` (NIO's handler would write through the encoder
                // that finished frames bypass).
                enableAutomaticErrorHandling: false,
                shouldUpgrade: { channel, head in
                    let admission = Admission.evaluate(
                        uri: head.uri,
                        apiKeyHeader: head.headers.first(name: "x-api-key"),
                        verifier: sockets.verifier,
                        now: WallClock.seconds(),
                        roomForConnection: roomForConnection()
                    )
                    switch admission {
                    case .accept(let version, let token, let claims):
                        admitted.value = (version, token, claims)
                        return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
                    case .refuse(let status, let error):
                        refusal.value = (status, error)
                        return channel.eventLoop.makeSucceededFuture(nil)
                    }
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard let (version, token, claims) = admitted.value else { throw ChannelError.inappropriateOperationForState }
                        try channel.syncOptions?.setOption(
                            ChannelOptions.writeBufferWaterMark,
                            value: .init(low: maxBufferedBytes / 2, high: maxBufferedBytes)
                        )
                        let connection = Connection(
                            id: sockets.hub.makeID(),
                            version: version,
                            token: token,
                            claims: claims,
                            channel: channel,
                            rawWriter: try channel.pipeline.syncOperations.context(handlerType: WebSocketFrameEncoder.self),
                            now: WallClock.milliseconds()
                        )
                        try channel.pipeline.syncOperations.addHandler(SocketSessionHandler(services: sockets, connection: connection))
                        return UpgradeResult.websocket
                    }
                }
            )
            let upgradeConfiguration = NIOTypedHTTPServerUpgradeConfiguration(
                upgraders: [upgrader],
                notUpgradingCompletionHandler: { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                        let asyncChannel = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true)
                        )
                        if let (status, error) = refusal.value {
                            return UpgradeResult.refused(asyncChannel, status: status, error: error)
                        }
                        return UpgradeResult.http(asyncChannel)
                    }
                }
            )
            var pipeline = NIOUpgradableHTTPServerPipelineConfiguration<UpgradeResult>(upgradeConfiguration: upgradeConfiguration)
            pipeline.enablePipelining = false
            pipeline.enableErrorHandling = false
            pipeline.enableResponseHeaderValidation = false
            let result = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: pipeline)
            return Value(upgradeResult: result, channel: channel)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.upgradeResult.get() {
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let status, let error):
                sockets.hub.metrics.socketRefused(status: status)
                try await Self.writeRefusal(http, status: status, error: error)
            case .websocket:
                return
            }
        } catch {
            logger.debug("connection ended during the HTTP upgrade", metadata: ["error": "\(error)"])
        }
    }

    /// Answers a refused upgrade with its status and `{"error": ...}` body, then closes the connection.
    static func writeRefusal(_ http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, status: Int, error: String?) async throws {
        let body = error.map { JSONValue.object(["error": .string($0)]).jsonBytes } ?? []
        var headers: HTTPFields = [.connection: "close", .contentLength: String(body.count)]
        if !body.isEmpty { headers[.contentType] = "application/json" }
        try await http.executeThenClose { _, outbound in
            try await outbound.write(contentsOf: [
                .head(HTTPResponse(status: .init(code: status), headerFields: headers)),
                .body(ByteBuffer(bytes: body)),
                .end(nil),
            ])
        }
    }
}
