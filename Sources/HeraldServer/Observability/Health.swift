import HeraldCore
import Synchronization

/// Where a change source stands.
enum ChangeSourceState: String, Sendable, Equatable {
    /// Not connected yet since start-up.
    case starting
    /// Connected and delivering changes.
    case streaming
    /// The connection broke; reconnecting with backoff.
    case reconnecting
}

/// The change source as `/api/health` shows it.
struct ChangeSourceHealth: Sendable, Equatable {
    var kind: ChangeSourceConfiguration.Kind
    var state: ChangeSourceState
    /// Replication only: WAL the slot still holds behind the server's current position.
    var lagBytes: Int64?
    /// Replication only: from the last transaction's commit to its dispatch.
    var lagSeconds: Double?
}

/// What `/api/health` answers: healthy when the database listener is connected and the change source streams.
struct HealthReport: Sendable, Equatable {
    var databaseConnected: Bool
    var changeSource: ChangeSourceHealth
    var connections: Int

    var isHealthy: Bool { databaseConnected && changeSource.state == .streaming }

    /// 200 when healthy, 503 (so load balancers take the node out) when degraded.
    var httpStatus: Int { isHealthy ? 200 : 503 }

    var json: JSONValue {
        let source: JSONObject = [
            "kind": .string(changeSource.kind.rawValue),
            "status": .string(changeSource.state.rawValue),
            "lag_bytes": changeSource.lagBytes.map { .int($0) } ?? .null,
            "lag_seconds": changeSource.lagSeconds.map { .number(Self.format(seconds: $0)) } ?? .null,
        ]
        return [
            "status": .string(isHealthy ? "ok" : "degraded"),
            "database": ["connected": .bool(databaseConnected)],
            "change_source": .object(source),
            "connections": .int(connections),
        ]
    }

    /// Milliseconds are enough, and a fixed form keeps the JSON number valid (no `1e-05`).
    static func format(seconds: Double) -> String {
        let milliseconds = Int64((max(seconds, 0) * 1000).rounded())
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)"
    }
}

/// The last known state of the database listener and the change source, written by them as events happen
/// (rarely: connects, outages, one commit time per transaction) and read by the health and metrics endpoints.
final class HealthMonitor: Sendable {
    private struct State {
        var listener = ChangeSourceState.starting
        var replication = ChangeSourceState.starting
        var lagBytes: Int64?
        var lagSeconds: Double?
    }

    let changeSourceKind: ChangeSourceConfiguration.Kind
    private let state = Mutex(State())

    init(changeSourceKind: ChangeSourceConfiguration.Kind) {
        self.changeSourceKind = changeSourceKind
    }

    /// The LISTEN connection (database broadcasts; row changes too with the trigger source).
    func listener(_ listenerState: ChangeSourceState) {
        state.withLock { $0.listener = listenerState }
    }

    /// The replication stream.
    func replication(_ replicationState: ChangeSourceState) {
        state.withLock { $0.replication = replicationState }
    }

    /// A replicated transaction was dispatched; both times in microseconds since the epoch.
    func replicated(commitTimestamp: Int64, now: Int64) {
        let seconds = Double(max(now - commitTimestamp, 0)) / 1_000_000
        state.withLock { $0.lagSeconds = seconds }
    }

    /// The slot's lag as last sampled (nil when it could not be read).
    func replicationLag(bytes: Int64?) {
        state.withLock { $0.lagBytes = bytes }
    }

    func report(connections: Int) -> HealthReport {
        state.withLock { state in
            let source: ChangeSourceHealth =
                switch changeSourceKind {
                case .trigger: ChangeSourceHealth(kind: .trigger, state: state.listener)
                case .replication:
                    ChangeSourceHealth(kind: .replication, state: state.replication, lagBytes: state.lagBytes, lagSeconds: state.lagSeconds)
                }
            return HealthReport(databaseConnected: state.listener == .streaming, changeSource: source, connections: connections)
        }
    }
}
