// HeraldServer: the running service — HTTP and WebSocket endpoints, sockets, the hub that fans changes out,
// token checks, and the change feed that reads PostgreSQL.
import HeraldCore
import HeraldPostgres
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals

/// Everything `herald serve` needs to know.
public struct ServerConfiguration: Sendable, CustomStringConvertible {
    /// Without the secret and the database password.
    public var description: String {
        "ServerConfiguration(host: \(host), port: \(port), database: \(DatabaseURL.redacted(databaseURL)))"
    }

    public var host: String
    public var port: Int
    public var databaseURL: String
    public var jwtSecret: String
    /// Inbound WebSocket messages above this size close the socket (1009).
    public var maxMessageBytes = 5_000_000
    /// A socket that sends nothing (not even a heartbeat) for this long is closed (1000).
    public var idleTimeoutMilliseconds: Int64 = 60_000
    /// A socket whose unsent backlog grows past this is closed as a slow consumer.
    public var maxBufferedBytes = 16 << 20
    /// Sockets beyond this many are refused at upgrade (429 `Too many connected users`).
    public var maxConnections = 100_000
    /// Channel joins per second over the whole server; a join over it is refused and its socket closed.
    public var maxJoinsPerSecond = 20_000
    /// Presence changes are collected this long and sent as one `presence_diff` per topic.
    public var presenceBatchInterval: Duration = .milliseconds(10)
    /// Payload sizes and the client presence rate.
    public var sessionLimits = SessionLimits()
    /// Which change source feeds postgres_changes (default: replication when `wal_level` is `logical`).
    public var changeSource = ChangeSourceConfiguration()
    /// A JSON Web Key Set of public keys for RS/PS/ES/EdDSA tokens (looked up by `kid`).
    public var jwks: String?
    /// Claims every token must carry with exactly these values (upstream's `JWT_CLAIM_VALIDATORS`).
    public var requiredClaims: JSONObject = [:]
    /// Database broadcasts (`realtime.messages` rows) older than this are deleted (upstream keeps 72 hours).
    public var messageRetention: Duration = .seconds(3 * 24 * 3600)

    public init(host: String = "127.0.0.1", port: Int = 4000, databaseURL: String, jwtSecret: String) {
        self.host = host
        self.port = port
        self.databaseURL = databaseURL
        self.jwtSecret = jwtSecret
    }
}

/// Builds and runs Herald until SIGINT/SIGTERM (or cancellation), then shuts down in order: sockets get a close
/// frame, the listener stops accepting, the PostgreSQL connections close.
public enum HeraldServer {
    /// `onRunning` receives the bound port (useful with port 0).
    public static func run(
        _ configuration: ServerConfiguration,
        logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) async throws {
        let verifier = try await TokenVerifier.make(
            secret: configuration.jwtSecret,
            jwks: configuration.jwks,
            requiredClaims: configuration.requiredClaims
        )
        let database = PostgresClient(databaseURL: configuration.databaseURL, logger: logger)
        try await checkSchema(database)
        let catalog = TableCatalog(
            load: { try await TableCatalog.load(from: database) },
            canAssumeRole: { try await TableCatalog.canAssumeRole($0, in: database) }
        )
        let metrics = ServerMetrics()
        let hub = Hub(catalog: catalog, changeLog: ChangeLog(window: configuration.changeSource.retention), logger: logger, metrics: metrics)
        let authorizer = ChangeAuthorizer(databaseURL: configuration.databaseURL, logger: logger)
        defer { authorizer.close() }
        let dispatcher = ChangeDispatcher(hub: hub, authorizer: authorizer, logger: logger)
        let policies = ChannelPolicies(database: database, logger: logger)
        let sockets = SocketServices(
            hub: hub,
            verifier: verifier,
            policies: policies,
            joins: JoinRateLimit(perSecond: configuration.maxJoinsPerSecond),
            changes: dispatcher,
            maxMessageBytes: configuration.maxMessageBytes,
            limits: configuration.sessionLimits,
            logger: logger
        )
        let router = Router()
        // Browsers call the REST endpoints from other origins, as upstream allows.
        router.add(middleware: CORSMiddleware(allowOrigin: .all, allowHeaders: [.authorization, .contentType, HTTPField.Name("apikey")!]))
        addRoutes(to: router, verifier: verifier, hub: hub)
        BroadcastRoutes.add(to: router, verifier: verifier, policies: policies, hub: hub, configuration: configuration)
        let maxFrameSize = configuration.maxMessageBytes
        let maxBufferedBytes = configuration.maxBufferedBytes
        let maxConnections = configuration.maxConnections
        let server = HTTPServerBuilder { responder in
            WebSocketUpgradeChannel(
                responder: responder,
                maxFrameSize: maxFrameSize,
                maxBufferedBytes: maxBufferedBytes,
                sockets: sockets,
                roomForConnection: { hub.connectionCount < maxConnections }
            )
        }
        let chosenSource = try await ChangeSources.replicationSource(
            configuration.changeSource,
            databaseURL: configuration.databaseURL,
            database: database,
            hub: hub,
            catalog: catalog,
            logger: logger
        )
        let health = HealthMonitor(changeSourceKind: chosenSource == nil ? .trigger : .replication)
        let replication = chosenSource.map { source in
            var source = source
            source.health = health
            return source
        }
        let lagSampler = replication.map { source in
            ReplicationLagSampler(
                database: database, slot: configuration.changeSource.slot, streamedThrough: { source.stream.streamedThrough }, health: health, logger: logger
            )
        }
        ObservabilityRoutes.add(to: router, hub: hub, metrics: metrics, health: health)
        let feed = ChangeFeed(
            databaseURL: configuration.databaseURL,
            hub: hub,
            health: health,
            catalog: catalog,
            maxBroadcastBytes: configuration.sessionLimits.maxPayloadBytes,
            deliversRowChanges: replication == nil,
            logger: logger
        )
        let ownEventLoops = EventLoops.makeGroup()
        let app = Application(
            router: router,
            server: server,
            // A deep accept queue: connection storms (thousands of clients reconnecting at once) should wait in the
            // kernel, not time out and retransmit their SYN after a second.
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "herald", backlog: 4096),
            onServerRunning: { channel in
                await feed.readiness.wait()
                await replication?.waitUntilCaughtUp()
                await onRunning(channel.localAddress?.port ?? configuration.port)
            },
            eventLoopGroupProvider: ownEventLoops.map { .shared($0) } ?? .singleton,
            logger: logger
        )

        let retention = MessageRetention(database: database, retention: configuration.messageRetention, logger: logger)
        let housekeeping = Housekeeping(hub: hub, configuration: configuration, eventLoop: (ownEventLoops ?? MultiThreadedEventLoopGroup.singleton).any())
        // Graceful shutdown runs in reverse order: sockets close first, then the HTTP server, then PostgreSQL.
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: dispatcher), .init(service: feed)] + (replication.map { [.init(service: $0)] } ?? [])
                    + (lagSampler.map { [.init(service: $0)] } ?? [])
                    + [.init(service: retention), .init(service: app), .init(service: housekeeping)],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger
            )
        )
        defer { database.close() }
        do {
            try await group.run()
        } catch {
            try? await ownEventLoops?.shutdownGracefully()
            throw error
        }
        try? await ownEventLoops?.shutdownGracefully()
    }

    /// Refuses to start against an unreachable database or one without Herald's schema, with one clear reason.
    static func checkSchema(_ database: PostgresClient) async throws {
        do {
            _ = try await database.query("SELECT count(*) FROM realtime.captured_tables()")
        } catch let error as PostgresError where error.sqlState == "42883" || error.sqlState == "3F000" {
            database.close()
            throw StartupError("the database has no Herald schema: run `herald migrate` first")
        } catch {
            database.close()
            throw StartupError("\(error)")
        }
    }

    public struct StartupError: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    static func addRoutes(to router: Router<BasicRequestContext>, verifier: TokenVerifier, hub: Hub) {
        // Plain HTTP requests to the socket paths get the same answers as refused upgrades.
        for path in Admission.socketPaths {
            router.get(RouterPath(path)) { request, _ -> Response in
                let admission = Admission.evaluate(
                    uri: request.uri.description,
                    apiKeyHeader: request.headers[HTTPField.Name("x-api-key")!],
                    verifier: verifier,
                    now: WallClock.seconds()
                )
                switch admission {
                case .refuse(let status, let error):
                    return jsonResponse(status: status, error: error)
                case .accept:
                    return jsonResponse(status: 400, error: "WebSocket upgrade required")
                }
            }
        }
    }

    static func jsonResponse(status: Int, error: String?) -> Response {
        guard let error else {
            return Response(status: .init(code: status), headers: [.contentLength: "0"], body: .init())
        }
        let body = JSONValue.object(["error": .string(error)]).jsonBytes
        return Response(
            status: .init(code: status),
            headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: body))
        )
    }
}

/// The shared timers, on an event loop rather than Swift's cooperative pool (so CPU-bound work elsewhere in the
/// process cannot hold them up): presence diffs flushed every `presenceBatchInterval`, and just after every whole
/// second the sweep for idle sockets and expired tokens (token expiries are whole seconds, so a channel closes
/// milliseconds after its `exp`, with one timer for all). Every tenth sweep also samples the outbound queues. On
/// graceful shutdown it closes every socket.
struct Housekeeping: Service, CustomStringConvertible {
    /// ServiceLifecycle logs services by description: never the configuration, which holds the JWT secret.
    var description: String { "Housekeeping" }

    let hub: Hub
    let configuration: ServerConfiguration
    let eventLoop: any EventLoop

    func run() async throws {
        let interval = TimeAmount.nanoseconds(Int64(configuration.presenceBatchInterval.components.seconds) * 1_000_000_000
            + configuration.presenceBatchInterval.components.attoseconds / 1_000_000_000)
        let hub = self.hub
        let presence = eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in hub.flushPresence() }
        let sweep = SecondSweep(hub: hub, idleMilliseconds: configuration.idleTimeoutMilliseconds, eventLoop: eventLoop)
        sweep.start()
        await withGracefulShutdownHandler {
            try? await gracefulShutdown()
        } onGracefulShutdown: {
            hub.closeAll()
        }
        presence.cancel()
        sweep.stop()
    }
}

/// Runs `Hub.sweep` just after every whole second of the wall clock, re-armed each time so it does not drift.
private final class SecondSweep: Sendable {
    private let hub: Hub
    private let idleMilliseconds: Int64
    private let eventLoop: any EventLoop
    private let state: NIOLoopBoundBox<(next: Scheduled<Void>?, count: Int, stopped: Bool)>

    init(hub: Hub, idleMilliseconds: Int64, eventLoop: any EventLoop) {
        self.hub = hub
        self.idleMilliseconds = idleMilliseconds
        self.eventLoop = eventLoop
        self.state = NIOLoopBoundBox.makeBoxSendingValue((nil, 0, false), eventLoop: eventLoop)
    }

    func start() {
        eventLoop.execute { self.arm() }
    }

    func stop() {
        eventLoop.execute {
            self.state.value.stopped = true
            self.state.value.next?.cancel()
        }
    }

    private func arm() {
        guard !state.value.stopped else { return }
        let now = WallClock.milliseconds()
        state.value.next = eventLoop.scheduleTask(in: .milliseconds(1000 - now % 1000 + 2)) {
            let count = self.state.value.count
            self.state.value.count = count + 1
            self.hub.sweep(now: WallClock.milliseconds(), idleMilliseconds: self.idleMilliseconds, sampleQueues: count % 10 == 0)
            self.arm()
        }
    }
}
