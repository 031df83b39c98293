import HeraldCore
import HeraldPostgres
import Logging
import ServiceLifecycle

/// Samples every few seconds how far Herald's decoding is behind the server (the WAL between the server's current
/// position and what the stream has read: the lag of delivery) for the metrics and health, and once a minute logs
/// it with the WAL the slot retains (kept behind by the resume window on purpose). Only runs with the replication
/// change source.
struct ReplicationLagSampler: Service, CustomStringConvertible {
    var description: String { "ReplicationLagSampler" }

    static let interval: Duration = .seconds(5)

    let database: PostgresClient
    let slot: String
    /// Where the stream has read up to.
    let streamedThrough: @Sendable () -> LSN
    let health: HealthMonitor
    let logger: Logger
    static let samplesPerLogLine = 12

    func run() async throws {
        await cancelWhenGracefulShutdown {
            var count = 0
            while !Task.isCancelled {
                await sample(log: count % Self.samplesPerLogLine == Self.samplesPerLogLine - 1)
                count += 1
                try? await Task.sleep(for: Self.interval)
            }
        }
    }

    func sample(log: Bool = false) async {
        do {
            let rows = try await database.query(
                """
                SELECT greatest(pg_wal_lsn_diff(pg_current_wal_lsn(), $2::pg_lsn), 0)::bigint,
                       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint
                FROM pg_replication_slots WHERE slot_name = $1
                """,
                [slot, streamedThrough().description]
            )
            let behind = rows.first?[0].flatMap { Int64($0) }
            health.replicationLag(bytes: behind)
            if log, let behind {
                logger.info(
                    "replication lag",
                    metadata: ["pg.slot": "\(slot)", "bytes_behind": "\(behind)", "retained_bytes": "\(rows.first?[1] ?? "?")",
                               "seconds_behind": "\(health.report(connections: 0).changeSource.lagSeconds.map { "\($0)" } ?? "?")"]
                )
            }
        } catch {
            health.replicationLag(bytes: nil)
            logger.debug("could not read the replication slot's lag", metadata: ["pg.slot": "\(slot)", "error": "\(error)"])
        }
    }
}
