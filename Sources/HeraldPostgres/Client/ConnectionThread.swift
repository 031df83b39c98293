import Dispatch
import Foundation
import Logging
import Synchronization

/// A dedicated thread that owns one lazily opened ``PGConnection`` and runs submitted jobs on it, in order.
///
/// libpq blocks, so it must never run on a NIO event loop or hold a cooperative-pool thread for long;
/// this thread is its only home. After a job leaves the connection broken it is dropped and the next job
/// reconnects; a job that leaves a transaction open gets it rolled back.
final class ConnectionThread: Sendable {
    /// A job receives the connection provider; it runs on the thread and must not let the connection escape.
    typealias Job = @Sendable (ConnectionSlot) -> Void

    private struct Queue {
        var jobs: [Job] = []
        var isClosed = false
    }

    private let queue = Mutex(Queue())
    private let wakeUp = DispatchSemaphore(value: 0)

    init(databaseURL: String, applicationName: String, logger: Logger) {
        // The thread keeps `self` alive until `close()` lets it finish.
        let thread = Thread { [self] in
            runJobs(on: ConnectionSlot(databaseURL: databaseURL, applicationName: applicationName, logger: logger))
        }
        thread.name = "herald.postgres"
        thread.start()
    }

    private func runJobs(on slot: ConnectionSlot) {
        while true {
            wakeUp.wait()
            let (jobs, isClosed) = queue.withLock { queue in
                defer { queue.jobs.removeAll() }
                return (queue.jobs, queue.isClosed)
            }
            for job in jobs {
                job(slot)
                slot.cleanUpAfterJob()
            }
            // Taken under the same lock as the jobs: once closed, no job can follow.
            if isClosed { break }
        }
        slot.close()
    }

    /// Queues `job`; `false` when the thread was closed (the job will never run).
    func submit(_ job: @escaping Job) -> Bool {
        let accepted = queue.withLock { queue in
            guard !queue.isClosed else { return false }
            queue.jobs.append(job)
            return true
        }
        if accepted { wakeUp.signal() }
        return accepted
    }

    /// Refuses new jobs; the thread finishes the queued ones, closes the connection and exits.
    func close() {
        let wasOpen = queue.withLock { queue in
            defer { queue.isClosed = true }
            return !queue.isClosed
        }
        if wasOpen { wakeUp.signal() }
    }
}

/// The connection state that lives on a ``ConnectionThread``: never shared with another thread.
final class ConnectionSlot {
    private let databaseURL: String
    private let applicationName: String
    private let logger: Logger
    private var current: PGConnection?

    init(databaseURL: String, applicationName: String, logger: Logger) {
        self.databaseURL = databaseURL
        self.applicationName = applicationName
        self.logger = logger
    }

    /// The open connection, connecting first if there is none (or the last one broke).
    func open() throws(PostgresError) -> PGConnection {
        if let current, current.isConnected { return current }
        current = nil
        let fresh = try PGConnection(url: databaseURL, applicationName: applicationName)
        logger.debug("connected to PostgreSQL", metadata: ["pg.backend.pid": "\(fresh.backendPID)"])
        current = fresh
        return fresh
    }

    /// Leaves the connection idle for the next job, or drops it so that the next job reconnects.
    func cleanUpAfterJob() {
        guard let connection = current else { return }
        guard connection.isConnected else {
            logger.debug("PostgreSQL connection lost; the next query reconnects")
            current = nil
            return
        }
        guard !connection.isIdle else { return }
        do {
            _ = try connection.execute("ROLLBACK")
        } catch {
            logger.debug("rollback of an abandoned transaction failed; reconnecting", metadata: ["error": "\(error)"])
            current = nil
        }
    }

    func close() {
        current = nil
    }
}
