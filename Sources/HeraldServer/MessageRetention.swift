import HeraldPostgres
import Logging
import ServiceLifecycle

/// Deletes database broadcasts (`realtime.messages` rows) older than the retention, at startup and then every
/// `interval`; upstream drops its daily partitions after 72 hours instead. A failed sweep is logged and retried
/// at the next interval.
struct MessageRetention: Service, CustomStringConvertible {
    var description: String { "MessageRetention" }

    let database: PostgresClient
    let retention: Duration
    var interval: Duration = .seconds(3600)
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await sweep()
                try? await Task.sleep(for: interval)
            }
        }
    }

    private func sweep() async {
        do {
            let rows = try await database.query(
                "SELECT realtime.delete_old_messages(make_interval(secs => $1::double precision)) AS deleted",
                [String(retention.components.seconds)]
            )
            let deleted = rows.first?["deleted"] ?? "0"
            if deleted != "0" {
                logger.info("deleted old database broadcasts", metadata: ["count": "\(deleted)"])
            }
        } catch {
            logger.warning("could not delete old database broadcasts", metadata: ["reason": "\(error)"])
        }
    }
}
