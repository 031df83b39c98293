import HeraldCore
import HeraldPostgres
import Logging
import ServiceLifecycle

/// Which change source feeds postgres_changes.
public struct ChangeSourceConfiguration: Sendable, Hashable {
    /// The two sources.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        /// Triggers + LISTEN/NOTIFY (`realtime.capture_changes()`).
        case trigger
        /// Logical replication (`pgoutput`) from a permanent slot.
        case replication
    }

    /// `nil`: replication when the server runs with `wal_level = logical` and Herald's role may replicate,
    /// the trigger source otherwise.
    public var kind: Kind?
    /// The replication slot (one per deployment sharing a database).
    public var slot: String
    /// The publication Herald keeps equal to the captured tables.
    public var publication: String
    /// How much history is kept for clients that resume (`postgres_changes_resume`). With the replication source
    /// the slot is confirmed only past changes that left it, so it survives a restart.
    public var retention: RetentionWindow

    /// Creates a configuration (defaults: automatic choice, slot and publication `herald`, 5 minutes / 128 MiB).
    public init(kind: Kind? = nil, slot: String = "herald", publication: String = "herald", retention: RetentionWindow = RetentionWindow()) {
        self.kind = kind
        self.slot = slot
        self.publication = publication
        self.retention = retention
    }
}

/// Where changes go: the hub, or a recorder in tests.
protocol ChangeSink: Sendable {
    func dispatch(_ change: Change)
    func reportGap(_ message: String)
    /// Whether dispatched changes still wait for their recipients to be chosen.
    var hasQueuedChanges: Bool { get }
}

extension Hub: ChangeSink {}

enum ChangeSources {
    /// The replication source when `configuration` asks for it (or the server allows it, when automatic), nil for
    /// the trigger source; logs which one runs.
    /// - Throws: ``HeraldServer/StartupError`` when replication is asked for but the server cannot provide it.
    static func replicationSource(
        _ configuration: ChangeSourceConfiguration,
        databaseURL: String,
        database: PostgresClient,
        hub: Hub,
        catalog: TableCatalog,
        logger: Logger
    ) async throws -> ReplicationSource? {
        let rows = try await database.query(
            "SELECT current_setting('wal_level') AS wal_level, rolreplication OR rolsuper AS can_replicate FROM pg_catalog.pg_roles WHERE rolname = current_user"
        )
        let walLevel = rows.first?["wal_level"] ?? "unknown"
        let canReplicate = rows.first?["can_replicate"] == "t"
        let replicationUnavailable: String? =
            walLevel != "logical"
            ? "the server runs with wal_level=\(walLevel) (logical is needed)"
            : canReplicate ? nil : "Herald's database role lacks the REPLICATION attribute"
        switch (configuration.kind, replicationUnavailable) {
        case (.replication, let reason?):
            throw HeraldServer.StartupError("cannot use the replication change source: \(reason)")
        case (.trigger, _), (nil, _?):
            logger.info(
                "change source: trigger (LISTEN/NOTIFY)",
                metadata: configuration.kind == nil ? ["reason": "\(replicationUnavailable ?? "")"] : [:]
            )
            // A replication-mode Herald may have turned them off.
            await setCaptureTriggers(enabled: true, database: database, logger: logger)
            return nil
        case (.replication, nil), (nil, nil):
            let stream = try ReplicationStream(
                databaseURL: databaseURL,
                configuration: .init(slot: configuration.slot, publication: configuration.publication),
                logger: logger
            )
            logger.info("change source: logical replication", metadata: ["pg.slot": "\(configuration.slot)", "pg.publication": "\(configuration.publication)"])
            let source = ReplicationSource(
                databaseURL: databaseURL,
                publication: configuration.publication,
                stream: stream,
                database: database,
                log: hub.changeLog,
                sink: hub,
                catalog: catalog,
                logger: logger
            )
            // A channel is told "Subscribed" only for tables the catalog knows, and the catalog publishes what it
            // loads before using it: a table whose capture was just turned on is streamed before any channel
            // subscribed to it is told so (the notification that also publishes it may come later).
            let publication = configuration.publication
            await catalog.publishBeforeUse { await ReplicationSource.synchronizePublication(publication, database: database, logger: logger) }
            try await source.prepare()
            return source
        }
    }
}

extension ChangeSources {
    /// Turns the capture triggers on (trigger source) or off (replication source: the WAL carries the changes,
    /// and writers need not pay for the triggers); failures are logged (the triggers then keep firing, unread).
    static func setCaptureTriggers(enabled: Bool, database: PostgresClient, logger: Logger) async {
        do {
            let changed = try await database.query("SELECT realtime.set_capture_triggers($1::boolean) AS changed", [enabled ? "true" : "false"])
            if let count = changed.first?["changed"], count != "0" {
                logger.info("capture triggers turned \(enabled ? "on" : "off")", metadata: ["tables": "\(count)"])
            }
        } catch {
            logger.warning("could not turn the capture triggers \(enabled ? "on" : "off")", metadata: ["error": "\(error)"])
        }
    }
}

/// The replication change source: decodes the slot's stream and dispatches every change, in commit order,
/// stamped with its transaction's commit time and position, keeping it in the change log for resuming clients.
/// The slot is confirmed past a transaction once its changes have left the log's window, so that a restarted
/// Herald reads them again from the slot (refilling the log) before it says it is serving.
///
/// It keeps the publication equal to the captured tables (`realtime.captured_tables()`), from start-up
/// (``ChangeSources/make(_:databaseURL:database:hub:catalog:logger:)``) on, whenever capture is turned on or
/// off (channel `herald_catalog`). An outage loses nothing (the slot keeps the
/// changes); a slot that had to be created again has lost changes, which every subscribed channel is told.
struct ReplicationSource: Service, CustomStringConvertible {
    /// ServiceLifecycle logs services by description: never the database URL, which may hold a password.
    var description: String { "ReplicationSource" }

    static let lostSlotMessage =
        "Changes may have been missed: the database's replication slot was lost and has been created again. Refetch to catch up."

    let databaseURL: String
    let publication: String
    let stream: ReplicationStream
    let database: PostgresClient
    let log: ChangeLog
    let sink: any ChangeSink
    let catalog: TableCatalog
    let logger: Logger
    /// Told the stream's state and each transaction's commit time (the server sets it; tests may leave it nil).
    var health: HealthMonitor?

    func run() async throws {
        let (catalogChanges, catalogChanged) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let catalogListener = NotificationListener(
            databaseURL: databaseURL,
            configuration: .init(channels: [ChangeFeed.catalogChannel], applicationName: "herald-catalog"),
            logger: logger
        ) { [catalog] event in
            switch event {
            case .notification(_, let table):
                logger.info("change capture changed", metadata: ["table": "\(table)"])
                catalog.invalidate()
                catalogChanged.yield()
            case .listening(reconnected: true):
                // Capture may have changed while nobody listened.
                catalog.invalidate()
                catalogChanged.yield()
            case .listening, .connectionLost:
                break
            }
        }
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await catalogListener.run() }
                group.addTask {
                    for await _ in catalogChanges { await synchronizePublication() }
                }
                group.addTask {
                    // Changes leave the window with time too: confirm the slot past them while nothing is written.
                    // Ends with the cancellation that stops the stream.
                    while (try? await Task.sleep(for: .seconds(1))) != nil {
                        acknowledgeExpired()
                    }
                }
                group.addTask {
                    await stream.run { event in handle(event) }
                    // The stream only ends on shutdown: end the others too.
                    catalogListener.stop()
                    catalogChanged.finish()
                }
            }
        }
    }

    /// Publishes the captured tables and creates the slot if needed. Done before Herald serves, so that every
    /// change committed from then on is delivered.
    /// The change log then follows the WAL from the slot's confirmed position, where streaming resumes.
    func prepare() async throws {
        await synchronizePublication()
        let prepared = try await database.withConnection { [stream] in try stream.prepare(on: $0) }
        log.followWAL(from: prepared.confirmedFlush)
        logger.info(
            "keeping changes for resuming clients",
            metadata: ["window_seconds": "\(log.window.duration.components.seconds)", "window_bytes": "\(log.window.maxBytes)", "pg.from": "\(prepared.confirmedFlush)"]
        )
    }

    /// Returns once every transaction committed before the call has been read, kept and handed to the dispatcher,
    /// which has chosen its recipients (after a restart, the changes still in the window are read again from the
    /// slot first: a client joining afterwards must not get them live), or after `timeout`.
    func waitUntilCaughtUp(timeout: Duration = .seconds(60)) async {
        guard let target = try? await database.query("SELECT pg_current_wal_flush_lsn()::text AS lsn").first?["lsn"].flatMap(LSN.init) else {
            return
        }
        let deadline = ContinuousClock.now + timeout
        var asked = ContinuousClock.now - .seconds(1)
        while stream.streamedThrough < target || sink.hasQueuedChanges {
            // An idle server reports its position only when asked (or every wal_sender_timeout / 2).
            if asked.duration(to: .now) >= .milliseconds(200) {
                stream.requestPosition()
                asked = .now
            }
            guard ContinuousClock.now < deadline, (try? await Task.sleep(for: .milliseconds(20))) != nil else {
                logger.warning("serving before the replication stream caught up", metadata: ["pg.target": "\(target)", "pg.streamed": "\(stream.streamedThrough)"])
                return
            }
        }
    }

    /// Called on the stream's thread, one event at a time.
    func handle(_ event: ReplicationEvent) {
        switch event {
        case .change(let change):
            log.publish(change, to: sink)
        case .commit(let commit):
            // The transaction's changes are kept (and queued for delivery): confirm the slot only past what left the window.
            log.committed(commit)
            acknowledgeExpired()
            health?.replicated(commitTimestamp: commit.commitTimestamp, now: WallClock.microseconds())
        case .streaming(let reconnected, let slotRecreated):
            health?.replication(.streaming)
            if reconnected { catalog.invalidate() }
            if slotRecreated {
                log.forgetAll()
                sink.reportGap(Self.lostSlotMessage)
            }
        case .connectionLost(let reason):
            health?.replication(.reconnecting)
            logger.warning("replication connection lost, reconnecting", metadata: ["reason": "\(reason)"])
        case .truncate(let tables):
            // Like upstream (and the trigger source), TRUNCATE produces no postgres_changes event.
            logger.debug("tables truncated", metadata: ["tables": "\(tables)"])
        case .begin:
            break
        }
    }

    /// Confirms the slot past the transactions whose changes have all left the window.
    func acknowledgeExpired() {
        if let position = log.confirmable() { stream.acknowledge(position) }
    }

    /// Makes the publication list the captured tables; failures are logged (the next catalog change retries).
    func synchronizePublication() async {
        await Self.synchronizePublication(publication, database: database, logger: logger)
    }

    /// One synchronization at a time, of this Herald and of others sharing the publication (an advisory lock for
    /// the transaction): each reads the captured tables only after the previous one committed, so a late one
    /// never takes back a table an earlier one added.
    static func synchronizePublication(_ publication: String, database: PostgresClient, logger: Logger) async {
        do {
            let plan = try await database.withConnection { connection in
                _ = try connection.execute("BEGIN")
                do {
                    _ = try connection.execute("SELECT pg_advisory_xact_lock(hashtext('herald publication ' || $1))", params: [publication])
                    let captured = try connection.execute("SELECT schema_name::text, table_name::text FROM realtime.captured_tables()")
                    let tables = captured.values.compactMap { row in row[0].flatMap { schema in row[1].map { TableName(schema: schema, table: $0) } } }
                    let plan = try connection.synchronizePublication(publication, tables: tables)
                    _ = try connection.execute("COMMIT")
                    return plan
                } catch {
                    _ = try? connection.execute("ROLLBACK")
                    throw error
                }
            }
            for table in plan.withoutIdentity {
                logger.warning(
                    "\(table) has no replica identity, so its changes are not streamed: add a primary key or run ALTER TABLE \(table) REPLICA IDENTITY FULL"
                )
            }
            if !plan.add.isEmpty || !plan.drop.isEmpty {
                logger.info("publication \(publication) updated", metadata: ["added": "\(plan.add)", "removed": "\(plan.drop)"])
            }
            // Tables whose capture was just turned on come with a trigger: the WAL carries their changes instead.
            await ChangeSources.setCaptureTriggers(enabled: false, database: database, logger: logger)
        } catch {
            logger.error("could not update publication \(publication)", metadata: ["error": "\(error)"])
        }
    }
}
