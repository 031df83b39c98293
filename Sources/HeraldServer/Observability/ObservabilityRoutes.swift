import HTTPTypes
import HeraldCore
import Hummingbird
import NIOCore

/// `GET /healthcheck` (liveness: `ok`), `GET /api/health` (readiness: database and change source, as JSON, 503
/// when degraded) and `GET /metrics` (Prometheus text). See docs/observability.md.
enum ObservabilityRoutes {
    static let metricsContentType = "text/plain; version=0.0.4; charset=utf-8"

    static func add(to router: Router<BasicRequestContext>, hub: Hub, metrics: ServerMetrics, health: HealthMonitor) {
        router.get("/healthcheck") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ok")))
        }
        router.get("/api/health") { _, _ -> Response in
            let report = health.report(connections: hub.connectionCount)
            return Response(
                status: .init(code: report.httpStatus),
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: report.json.jsonBytes))
            )
        }
        router.get("/metrics") { _, _ -> Response in
            let text = metrics.exposition(
                connections: hub.connectionCount,
                joinedChannels: hub.joinedChannelCount,
                health: health.report(connections: hub.connectionCount)
            )
            return Response(
                status: .ok,
                headers: [.contentType: metricsContentType, .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: text))
            )
        }
    }
}
