import Foundation
import HeraldCore
import Logging
import Synchronization

/// Herald's logical replication change source: one `pgoutput` stream from a permanent slot, decoded into
/// ``ReplicationEvent``s on a thread of its own, reconnecting by itself.
///
/// On every (re)connection it creates the publication (empty; tables are added by whoever manages it) and the
/// slot when they are missing, logging one line, then streams with `proto_version '1'` from the last position
/// the consumer acknowledged. Values are converted to the JSON the trigger source's `row_to_json` produces;
/// the replication session runs with `DateStyle = ISO` and `TimeZone = UTC`, so `timestamptz` values read
/// `+00:00`.
///
/// Events go to the `onEvent` callback of ``run(onEvent:)``, on the stream's thread, one at a time, in commit
/// order; while it runs nothing is read (the server buffers, then waits). Transactions are streamed
/// (`.begin`, `.change`…, `.commit`), so memory stays bounded whatever their size. The slot only moves past
/// a transaction once the consumer has called ``acknowledge(_:)`` with its commit's `endLSN` (or a later
/// position): until then PostgreSQL keeps it, and sends it again after a reconnection or a restart.
public final class ReplicationStream: Sendable {
    /// Names and timings.
    public struct Configuration: Sendable {
        /// The logical replication slot (lower-case letters, digits, `_`). Deployments sharing a database
        /// need one each.
        public var slot: String
        /// The publication that lists the streamed tables (same character rules as the slot).
        public var publication: String
        /// Waits between reconnect attempts.
        public var backoff: ListenerStateMachine.Backoff
        /// The longest wait on the socket before checking for stop and acknowledgements.
        public var pollInterval: Duration
        /// When standby status updates go out.
        public var feedback: StandbyFeedback
        /// `application_name` of the stream's connections unless the URL sets one.
        public var applicationName: String

        /// Creates a configuration.
        /// - Parameters:
        ///   - slot: defaults to `herald`.
        ///   - publication: defaults to `herald`.
        ///   - backoff: defaults to 100 ms doubling to 5 s.
        ///   - pollInterval: defaults to 100 ms.
        ///   - feedback: defaults to an update every 10 s, and within 1 s of progress.
        ///   - applicationName: defaults to `herald-replication`.
        public init(
            slot: String = "herald",
            publication: String = "herald",
            backoff: ListenerStateMachine.Backoff = .init(),
            pollInterval: Duration = .milliseconds(100),
            feedback: StandbyFeedback = .init(),
            applicationName: String = "herald-replication"
        ) {
            self.slot = slot
            self.publication = publication
            self.backoff = backoff
            self.pollInterval = pollInterval
            self.feedback = feedback
            self.applicationName = applicationName
        }
    }

    private let databaseURL: String
    private let configuration: Configuration
    private let logger: Logger
    private let signal = StopSignal()
    private let acknowledged = Atomic<UInt64>(0)
    private let streamed = Atomic<UInt64>(0)
    private let positionWanted = Atomic<Bool>(false)

    /// Creates a stream; nothing happens until ``run(onEvent:)``.
    /// - Throws: ``PostgresError`` with code `.invalidParameter` for a slot or publication name PostgreSQL
    ///   would refuse (or that would need quoting).
    public init(databaseURL: String, configuration: Configuration = .init(), logger: Logger = Logger(label: "herald.replication")) throws(PostgresError) {
        for name in [configuration.slot, configuration.publication] where !ReplicationSetup.isValidName(name) {
            throw PostgresError(
                code: .invalidParameter,
                message: "replication slot and publication names may only contain lower-case letters, digits and underscores (at most 63): '\(name)'"
            )
        }
        self.databaseURL = databaseURL
        self.configuration = configuration
        self.logger = logger
    }

    /// Streams until ``stop()`` is called or the calling task is cancelled, reconnecting as needed. Returns
    /// once the thread has ended: no event is delivered afterwards. A stream runs at most once.
    public func run(onEvent: @escaping @Sendable (ReplicationEvent) -> Void) async {
        guard signal.claimRun() else { return }
        let loop = ReplicationLoop(
            databaseURL: databaseURL,
            configuration: configuration,
            logger: logger,
            signal: signal,
            acknowledged: { [self] in LSN(acknowledged.load(ordering: .acquiring)) },
            streamed: { [self] in streamed.max($0.value, ordering: .releasing) },
            positionWanted: { [self] in positionWanted.exchange(false, ordering: .acquiringAndReleasing) },
            deliver: onEvent
        )
        await signal.runOnThread(named: "herald.replication") { loop.run() }
    }

    /// The consumer has finished with every transaction up to `position` (a ``TransactionCommit/endLSN``):
    /// the slot may move past them. Positions only move forward; any thread may call this.
    public func acknowledge(_ position: LSN) {
        acknowledged.max(position.value, ordering: .releasing)
    }

    /// How far the server has sent every transaction: the end of the last commit delivered, or the WAL end of a
    /// keepalive received between transactions. Once it passes a position read from `pg_current_wal_flush_lsn()`,
    /// every transaction committed before that read has been delivered.
    public var streamedThrough: LSN {
        LSN(streamed.load(ordering: .acquiring))
    }

    /// Asks the server, with the next status update, to say at once how far it has sent (a keepalive carrying its
    /// sent position): on an idle database it would otherwise say so only every `wal_sender_timeout / 2`.
    public func requestPosition() {
        positionWanted.store(true, ordering: .releasing)
    }

    /// Asks the stream to end; ``run(onEvent:)`` returns within about one poll interval.
    public func stop() {
        signal.stop()
    }

    /// Creates the publication and the slot when missing (logging one line for each), so that changes committed
    /// from now on are captured even before ``run(onEvent:)`` connects. `run` does the same on every connection.
    /// Returns what was found, with the slot's confirmed position: where streaming will resume.
    @discardableResult
    public func prepare(on connection: PGConnection) throws(PostgresError) -> ReplicationPreparation {
        let prepared = try connection.prepareReplication(slot: configuration.slot, publication: configuration.publication)
        Self.log(prepared, configuration: configuration, logger: logger)
        return prepared
    }

    static func log(_ prepared: ReplicationPreparation, configuration: Configuration, logger: Logger) {
        if prepared.publicationCreated {
            logger.info("created publication \(configuration.publication) (empty: add tables to stream their changes)")
        }
        if prepared.slotCreated {
            logger.info("created replication slot \(configuration.slot) at \(prepared.confirmedFlush)")
        }
    }
}
