import HeraldPostgres
import Logging
import ServiceLifecycle

/// Samples how far the replication slot is behind the server every few seconds: the WAL between the server's
/// current position and the slot's confirmed one, which is what PostgreSQL has to keep for Herald. Only runs with
/// the replication change source.
struct ReplicationLagSampler: Service, CustomStringConvertible {
    var description: String { "ReplicationLagSampler" }

    static let interval: Duration = .seconds(5)

    let database: PostgresClient
    let slot: String
    let health: HealthMonitor
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sample()
                try? await Task.sleep(for: Self.interval)
            }
        }
    }

    func sample() async {
        do {
            let rows = try await database.query(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint FROM pg_replication_slots WHERE slot_name = $1",
                [slot]
            )
            health.replicationLag(bytes: rows.first?[0].flatMap { Int64($0) })
        } catch {
            health.replicationLag(bytes: nil)
            logger.debug("could not read the replication slot's lag", metadata: ["pg.slot": "\(slot)", "error": "\(error)"])
        }
    }
}
