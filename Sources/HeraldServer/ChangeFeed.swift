import HeraldCore
import HeraldPostgres
import Logging
import ServiceLifecycle
import Synchronization

/// The trigger change source: Herald's one LISTEN connection. Row changes and database broadcasts
/// (`realtime.send`) are decoded and dispatched on the listener's thread, one at a time, so they reach sockets in
/// commit order; row changes are numbered and kept in the hub's change log for resuming clients. An interrupted
/// stream is reported to every subscribed channel, since NOTIFY forgets what was sent while nobody listened.
struct ChangeFeed: Service, CustomStringConvertible {
    /// ServiceLifecycle logs services by description: never the database URL, which may hold a password.
    var description: String { "ChangeFeed" }

    static let changesChannel = "herald_changes"
    static let catalogChannel = "herald_catalog"
    static let gapMessage = "Changes may have been missed: the connection to the database was interrupted. Refetch to catch up."

    let databaseURL: String
    let hub: Hub
    /// Told when the LISTEN connection is up or down.
    let health: HealthMonitor
    let catalog: TableCatalog
    /// Database broadcasts with a bigger payload are dropped, like those sent by clients.
    let maxBroadcastBytes: Int
    /// False when the replication source delivers row changes: the feed then only carries database broadcasts
    /// (the capture triggers still notify; their row changes are ignored here rather than sent twice).
    let deliversRowChanges: Bool
    let logger: Logger
    /// Settled once the first LISTEN is in place (or failed), so Herald says it is ready only when no change
    /// committed from then on can be missed.
    let readiness = Readiness()

    func run() async throws {
        let stamper = CommitStamper()
        let listener = NotificationListener(
            databaseURL: databaseURL,
            configuration: .init(channels: [Self.changesChannel, Self.catalogChannel]),
            logger: logger
        ) { [self] event in
            switch event {
            case .listening(let reconnected):
                readiness.settle()
                health.listener(.streaming)
                logger.info("listening for changes", metadata: ["reconnected": "\(reconnected)"])
                if reconnected {
                    catalog.invalidate()
                    // Changes committed while nobody listened are gone: no earlier position can be resumed from.
                    hub.changeLog.forgetAll()
                    hub.reportGap(Self.gapMessage)
                }
            case .connectionLost(let reason):
                readiness.settle()
                health.listener(.reconnecting)
                logger.warning("change feed connection lost, reconnecting", metadata: ["reason": "\(reason)"])
            case .notification(let channel, let payload) where channel == Self.catalogChannel:
                logger.info("change capture changed", metadata: ["table": "\(payload)"])
                catalog.invalidate()
            case .notification(_, let payload):
                do {
                    switch try ChangeNotification(json: Array(payload.utf8)) {
                    case .change(let decoded):
                        guard deliversRowChanges else { return }
                        let commitTime = stamper.timestamp(transaction: decoded.transactionID, now: WallClock.microseconds())
                        hub.changeLog.publish(decoded.change(commitTimestamp: commitTime), to: hub)
                    case .broadcast(let broadcast):
                        deliver(broadcast)
                    }
                } catch {
                    logger.error("dropped an undecodable change notification", metadata: ["reason": "\(error)"])
                }
            }
        }
        await cancelWhenGracefulShutdown {
            await listener.run()
        }
    }

    private func deliver(_ broadcast: DatabaseBroadcast) {
        guard broadcast.payload.count <= maxBroadcastBytes else {
            hub.metrics.dropped(.tooLarge)
            logger.warning(
                "dropped a database broadcast over the payload size limit",
                metadata: ["topic": "\(broadcast.topic)", "event": "\(broadcast.event)", "id": "\(broadcast.id)", "bytes": "\(broadcast.payload.count)"]
            )
            return
        }
        hub.broadcast(broadcast.message)
    }
}

/// NOTIFY carries no commit time: a change is stamped when it arrives, which is right after its commit, and
/// every row of one transaction shares the first row's stamp.
final class CommitStamper: Sendable {
    private struct Last {
        var transaction = ""
        var timestamp: Int64 = 0
    }

    private let last = Mutex(Last())

    func timestamp(transaction: String, now: Int64) -> Int64 {
        last.withLock { last in
            if last.transaction != transaction || transaction.isEmpty {
                last = Last(transaction: transaction, timestamp: now)
            }
            return last.timestamp
        }
    }
}

/// A one-time signal: `wait()` returns once `settle()` has been called.
final class Readiness: Sendable {
    private struct State {
        var settled = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func settle() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.settled = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let settled = state.withLock { state in
                if !state.settled { state.waiters.append(continuation) }
                return state.settled
            }
            if settled { continuation.resume() }
        }
    }
}
