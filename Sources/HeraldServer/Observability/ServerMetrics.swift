import CoreMetrics
import Prometheus

/// Herald's metrics (`GET /metrics`), written with the swift-metrics API into a Prometheus registry that belongs
/// to one server, so several servers in one process (the tests) keep apart and nothing is bootstrapped globally.
///
/// Every handle is created once here; counting is an atomic add on a handle picked by an enum's index, so the hot
/// paths take no lock and allocate nothing. Fan-outs are counted once per batch (`recipients.count`), not per
/// socket. Gauges that describe current state (connections, channels, the change source) are set when scraped.
final class ServerMetrics: Sendable {
    /// What a fan-out delivered.
    enum DeliveryKind: Int, CaseIterable {
        case postgresChanges, broadcast, presence

        var label: String {
            switch self {
            case .postgresChanges: "postgres_changes"
            case .broadcast: "broadcast"
            case .presence: "presence"
            }
        }
    }

    /// Why the server closed a socket.
    enum SocketCloseReason: Int, CaseIterable {
        case idleTimeout, slowConsumer, tooLarge, protocolError

        var label: String {
            switch self {
            case .idleTimeout: "idle_timeout"
            case .slowConsumer: "slow_consumer"
            case .tooLarge: "too_large"
            case .protocolError: "protocol_error"
            }
        }
    }

    /// Why the server closed a channel while its socket stayed open.
    enum ChannelCloseReason: Int, CaseIterable {
        case tokenExpired

        var label: String { "token_expired" }
    }

    /// Why a WebSocket upgrade was refused.
    enum RefusalReason: Int, CaseIterable {
        case maxConnections, unauthorized, badRequest

        var label: String {
            switch self {
            case .maxConnections: "max_connections"
            case .unauthorized: "unauthorized"
            case .badRequest: "bad_request"
            }
        }

        /// From the refusal's HTTP status (see `Admission`).
        init(status: Int) {
            switch status {
            case 429: self = .maxConnections
            case 401: self = .unauthorized
            default: self = .badRequest
            }
        }
    }

    /// Why a message was dropped without closing anything.
    enum DropReason: Int, CaseIterable {
        /// An inbound message that could not be decoded.
        case malformed
        /// A database broadcast over the payload size limit.
        case tooLarge

        var label: String {
            switch self {
            case .malformed: "malformed"
            case .tooLarge: "too_large"
            }
        }
    }

    /// Client message events, by their Phoenix `event`.
    enum InboundEvent: Int, CaseIterable {
        case phxJoin, phxLeave, broadcast, presence, heartbeat, accessToken, other

        init(event: String) {
            switch event {
            case "phx_join": self = .phxJoin
            case "phx_leave": self = .phxLeave
            case "broadcast": self = .broadcast
            case "presence": self = .presence
            case "heartbeat": self = .heartbeat
            case "access_token": self = .accessToken
            default: self = .other
            }
        }

        var label: String {
            switch self {
            case .phxJoin: "phx_join"
            case .phxLeave: "phx_leave"
            case .broadcast: "broadcast"
            case .presence: "presence"
            case .heartbeat: "heartbeat"
            case .accessToken: "access_token"
            case .other: "other"
            }
        }
    }

    private let registry = PrometheusCollectorRegistry()

    private let deliveries: [CoreMetrics.Counter]
    private let socketsClosed: [CoreMetrics.Counter]
    private let channelsClosed: [CoreMetrics.Counter]
    private let socketsRefused: [CoreMetrics.Counter]
    private let messagesDropped: [CoreMetrics.Counter]
    private let inboundMessages: [CoreMetrics.Counter]
    private let changesReceived: CoreMetrics.Counter

    private let connections: CoreMetrics.Gauge
    private let joinedChannels: CoreMetrics.Gauge
    private let outboundQueueBytes: CoreMetrics.Gauge
    private let databaseConnected: CoreMetrics.Gauge
    private let changeSourceStreaming: CoreMetrics.Gauge
    private let changeSourceLagBytes: CoreMetrics.Gauge
    private let changeSourceLagSeconds: CoreMetrics.Gauge

    init() {
        let factory = PrometheusMetricsFactory(registry: registry)
        func counters<Label: CaseIterable>(_ name: String, _ dimension: String, _ label: (Label) -> String) -> [CoreMetrics.Counter] {
            Label.allCases.map { CoreMetrics.Counter(label: name, dimensions: [(dimension, label($0))], factory: factory) }
        }
        func gauge(_ name: String) -> CoreMetrics.Gauge { CoreMetrics.Gauge(label: name, factory: factory) }

        deliveries = counters("herald_deliveries_total", "kind", { (kind: DeliveryKind) in kind.label })
        socketsClosed = counters("herald_sockets_closed_total", "reason", { (reason: SocketCloseReason) in reason.label })
        channelsClosed = counters("herald_channels_closed_total", "reason", { (reason: ChannelCloseReason) in reason.label })
        socketsRefused = counters("herald_sockets_refused_total", "reason", { (reason: RefusalReason) in reason.label })
        messagesDropped = counters("herald_messages_dropped_total", "reason", { (reason: DropReason) in reason.label })
        inboundMessages = counters("herald_inbound_messages_total", "event", { (event: InboundEvent) in event.label })
        changesReceived = CoreMetrics.Counter(label: "herald_changes_received_total", factory: factory)

        connections = gauge("herald_connections")
        joinedChannels = gauge("herald_joined_channels")
        outboundQueueBytes = gauge("herald_outbound_queue_bytes")
        databaseConnected = gauge("herald_database_connected")
        changeSourceStreaming = gauge("herald_change_source_streaming")
        changeSourceLagBytes = gauge("herald_change_source_lag_bytes")
        changeSourceLagSeconds = gauge("herald_change_source_lag_seconds")
    }

    // MARK: Counting (hot paths)

    /// One fan-out batch reached `count` sockets.
    func delivered(_ kind: DeliveryKind, count: Int) { deliveries[kind.rawValue].increment(by: count) }

    func socketClosed(_ reason: SocketCloseReason) { socketsClosed[reason.rawValue].increment() }

    func channelsClosed(_ reason: ChannelCloseReason, count: Int) { channelsClosed[reason.rawValue].increment(by: count) }

    func socketRefused(status: Int) { socketsRefused[RefusalReason(status: status).rawValue].increment() }

    func dropped(_ reason: DropReason) { messagesDropped[reason.rawValue].increment() }

    func received(event: String) { inboundMessages[InboundEvent(event: event).rawValue].increment() }

    func changeReceived() { changesReceived.increment() }

    /// Sampled by the housekeeping sweep: bytes written to sockets but not yet taken by the kernel.
    func sampledOutboundQueue(bytes: Int) { outboundQueueBytes.record(bytes) }

    // MARK: Exposition

    /// The Prometheus text exposition (format 0.0.4), after setting the gauges that describe current state.
    func exposition(connections: Int, joinedChannels: Int, health: HealthReport) -> [UInt8] {
        self.connections.record(connections)
        self.joinedChannels.record(joinedChannels)
        databaseConnected.record(health.databaseConnected ? 1 : 0)
        changeSourceStreaming.record(health.changeSource.state == .streaming ? 1 : 0)
        changeSourceLagBytes.record(health.changeSource.lagBytes ?? 0)
        changeSourceLagSeconds.record(health.changeSource.lagSeconds ?? 0)
        return registry.emitToBuffer()
    }
}
