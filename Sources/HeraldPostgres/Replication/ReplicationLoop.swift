import Foundation
import HeraldCore
import Logging

/// The body of the replication stream's thread: performs the actions of a ``ListenerStateMachine`` (the same
/// reconnect policy as the listener) around a streaming session. Owns the connections and the decoding state;
/// nothing here is shared with another thread except the stop signal and the acknowledged position.
final class ReplicationLoop: Sendable {
    private let databaseURL: String
    private let configuration: ReplicationStream.Configuration
    private let logger: Logger
    private let signal: StopSignal
    private let acknowledged: @Sendable () -> LSN
    /// Told how far the server has sent everything (commit ends, and keepalive WAL ends between transactions).
    private let streamed: @Sendable (LSN) -> Void
    /// Whether the consumer wants the server's sent position now (taken once per call).
    private let positionWanted: @Sendable () -> Bool
    private let deliver: @Sendable (ReplicationEvent) -> Void

    init(
        databaseURL: String,
        configuration: ReplicationStream.Configuration,
        logger: Logger,
        signal: StopSignal,
        acknowledged: @escaping @Sendable () -> LSN,
        streamed: @escaping @Sendable (LSN) -> Void,
        positionWanted: @escaping @Sendable () -> Bool,
        deliver: @escaping @Sendable (ReplicationEvent) -> Void
    ) {
        self.databaseURL = databaseURL
        self.configuration = configuration
        self.logger = logger
        self.signal = signal
        self.acknowledged = acknowledged
        self.streamed = streamed
        self.positionWanted = positionWanted
        self.deliver = deliver
    }

    /// One connected streaming session: the replication connection and an ordinary one for catalog lookups.
    private struct Session {
        var stream: PGConnection
        var catalog: PGConnection
        /// The slot had been found or created before, then disappeared and was created again.
        var slotRecreated: Bool
    }

    /// What survives reconnections: decoding state, feedback timing, and the lowest position to confirm.
    private struct Progress {
        var assembler = ChangeAssembler()
        var feedback: StandbyFeedback
        /// The slot's confirmed position when the session started: never confirm less.
        var floor = LSN.zero
        /// Whether a slot was ever found or created, so that a missing one means it was dropped.
        var hadSlot = false
    }

    func run() {
        var machine = ListenerStateMachine(backoff: configuration.backoff)
        var action = machine.start()
        var session: Session?
        var progress = Progress(feedback: configuration.feedback)
        while true {
            if signal.isStopped { action = machine.stop() }
            switch action {
            case .connect:
                do {
                    session = try connect(&progress)
                    action = machine.connected()
                } catch {
                    logger.debug("replication connection attempt failed", metadata: ["error": "\(error)"])
                    action = machine.connectFailed("\(error)")
                }
            case .startListening(let reconnected):
                guard let current = session else {
                    action = machine.connectionLost("no connection")
                    continue
                }
                logger.info(
                    "streaming changes",
                    metadata: ["pg.slot": "\(configuration.slot)", "pg.publication": "\(configuration.publication)", "reconnected": "\(reconnected)"]
                )
                deliver(.streaming(reconnected: reconnected, slotRecreated: current.slotRecreated))
                do {
                    try pump(current, &progress)
                    // Stopping: tell the server how far the consumer got, so a restart resumes there.
                    sendStatus(current, &progress, replyRequested: true)
                    action = machine.stop()
                } catch {
                    action = machine.connectionLost("\(error)")
                }
                session = nil
                progress.assembler.connectionRestarted()
                progress.feedback.reset()
            case .waitBeforeReconnecting(let delay, let report):
                if let report {
                    logger.info("replication connection lost; reconnecting", metadata: ["error": "\(report)"])
                    deliver(.connectionLost(report))
                }
                signal.sleep(delay)
                action = machine.waitElapsed()
            case .finish:
                return
            }
        }
    }

    private func connect(_ progress: inout Progress) throws -> Session {
        let catalog = try PGConnection(url: databaseURL, applicationName: configuration.applicationName, isCancelled: { signal.isStopped })
        let prepared = try catalog.prepareReplication(slot: configuration.slot, publication: configuration.publication)
        let recreated = prepared.slotCreated && progress.hadSlot
        if recreated {
            logger.warning(
                "replication slot \(configuration.slot) was missing and has been created again at \(prepared.confirmedFlush): changes committed while it was missing are lost"
            )
        } else {
            ReplicationStream.log(prepared, configuration: configuration, logger: logger)
        }
        progress.hadSlot = true
        progress.floor = prepared.confirmedFlush
        let stream = try PGConnection.replicationConnection(
            url: databaseURL,
            applicationName: configuration.applicationName,
            isCancelled: { signal.isStopped }
        )
        // Values are printed by the server session: ISO dates are what ValueConversion reads, and UTC is the
        // time zone `timestamptz` values are shown in.
        try stream.executeScript("SET DateStyle = ISO; SET TimeZone = 'UTC'")
        let start = max(acknowledged(), progress.floor)
        try stream.startReplication(
            "START_REPLICATION SLOT \(configuration.slot) LOGICAL \(start) (proto_version '1', publication_names '\(configuration.publication)')"
        )
        return Session(stream: stream, catalog: catalog, slotRecreated: recreated)
    }

    /// Reads, decodes and delivers until stop; throws when the connection breaks or the stream is inconsistent.
    private func pump(_ session: Session, _ progress: inout Progress) throws {
        while !signal.isStopped {
            try session.stream.flush()
            switch try session.stream.readCopyData() {
            case .data(let bytes):
                try handle(bytes, session, &progress)
            case .wouldBlock:
                sendStatus(session, &progress, replyRequested: false, askServer: positionWanted())
                if session.stream.waitForInput(timeout: configuration.pollInterval) {
                    try session.stream.consumeInput()
                }
            }
        }
    }

    private func handle(_ bytes: [UInt8], _ session: Session, _ progress: inout Progress) throws {
        switch try ReplicationServerMessage.decode(bytes) {
        case .keepalive(let walEnd, _, let replyRequested):
            progress.feedback.keepalive(walEnd: walEnd, isInTransaction: progress.assembler.isInTransaction)
            if !progress.assembler.isInTransaction { streamed(walEnd) }
            if replyRequested { sendStatus(session, &progress, replyRequested: true) }
        case .xLogData(let data):
            let message = try PgOutputMessage.decode(data.data)
            if case .relation(let relation) = message {
                try ReplicationSetup.learnTypes(for: relation, into: &progress.assembler, on: session.catalog)
            }
            guard let event = try progress.assembler.consume(message) else { return }
            deliver(event)
            // Under a steady stream the socket never runs dry: report progress between transactions too.
            if case .commit(let commit) = event {
                streamed(commit.endLSN)
                sendStatus(session, &progress, replyRequested: false)
            }
        }
    }

    /// Sends a standby status update when one is due; a failure shows on the next read.
    /// With `askServer` the update asks the server to answer at once with a keepalive.
    private func sendStatus(_ session: Session, _ progress: inout Progress, replyRequested: Bool, askServer: Bool = false) {
        let confirmable = progress.feedback.confirmable(
            acknowledged: max(acknowledged(), progress.floor),
            deliveredThrough: progress.assembler.deliveredThrough,
            isInTransaction: progress.assembler.isInTransaction
        )
        let clock = PostgresEpoch.postgresMicroseconds(Int64(Date().timeIntervalSince1970 * 1_000_000))
        guard var update = progress.feedback.update(confirmable: confirmable, replyRequested: replyRequested || askServer, now: .now, postgresClock: clock) else {
            return
        }
        update.replyRequested = askServer
        do {
            try session.stream.sendCopyData(update.bytes)
            logger.trace("confirmed replication position", metadata: ["pg.lsn": "\(update.flushed)"])
        } catch {
            logger.debug("standby status update failed", metadata: ["error": "\(error)"])
        }
    }
}
