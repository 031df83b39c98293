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
/// HTTP status with a JSON body, which this channel writes itself.
struct WebSocketUpgradeChannel: ServerChildChannel, HTTPChannelHandler {
    enum UpgradeResult: Sendable {
        case websocket(NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, version: SerializerVersion, token: String)
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, status: Int, error: String?)
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
    }

    struct Value: ServerChildChannelValue {
        let upgradeResult: EventLoopFuture<UpgradeResult>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let maxFrameSize: Int
    let verifier: TokenVerifier
    let metrics: ServerMetrics
    /// Whether one more socket may connect (`maxConnections`).
    let roomForConnection: @Sendable () -> Bool
    let serveWebSocket: @Sendable (NIOAsyncChannel<WebSocketFrame, WebSocketFrame>, SerializerVersion, String, Logger) async -> Void

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let verifier = self.verifier
            // The refusal decided while the upgrade was attempted, answered once the channel is plain HTTP again.
            let refusal = NIOLoopBoundBox<(status: Int, error: String?)?>(nil, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<UpgradeResult>(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, head in
                    let admission = Admission.evaluate(
                        uri: head.uri,
                        apiKeyHeader: head.headers.first(name: "x-api-key"),
                        verifier: verifier,
                        now: WallClock.seconds(),
                        roomForConnection: roomForConnection()
                    )
                    guard case .refuse(let status, let error) = admission else {
                        return channel.eventLoop.makeSucceededFuture(HTTPHeaders())
                    }
                    refusal.value = (status, error)
                    return channel.eventLoop.makeSucceededFuture(nil)
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        let (_, query) = Admission.splitURI(head.uri)
                        let token = head.headers.first(name: "x-api-key") ?? query["apikey"] ?? ""
                        let version = SerializerVersion(vsn: query["vsn"]) ?? .v1
                        let asyncChannel = try NIOAsyncChannel<WebSocketFrame, WebSocketFrame>(wrappingChannelSynchronously: channel)
                        return UpgradeResult.websocket(asyncChannel, version: version, token: token)
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
                metrics.socketRefused(status: status)
                try await Self.writeRefusal(http, status: status, error: error)
            case .websocket(let socket, let version, let token):
                await serveWebSocket(socket, version, token, logger)
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
