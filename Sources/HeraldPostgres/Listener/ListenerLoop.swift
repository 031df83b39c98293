import HeraldCore
import Logging

/// The body of the listener's thread: performs the actions of a ``ListenerStateMachine``.
/// Owns the connection; nothing here is shared with another thread except through ``StopSignal``.
final class ListenerLoop: Sendable {
    private let databaseURL: String
    private let configuration: NotificationListener.Configuration
    private let logger: Logger
    private let signal: StopSignal
    private let deliver: @Sendable (ListenerEvent) -> Void

    init(
        databaseURL: String,
        configuration: NotificationListener.Configuration,
        logger: Logger,
        signal: StopSignal,
        deliver: @escaping @Sendable (ListenerEvent) -> Void
    ) {
        self.databaseURL = databaseURL
        self.configuration = configuration
        self.logger = logger
        self.signal = signal
        self.deliver = deliver
    }

    func run() {
        var machine = ListenerStateMachine(backoff: configuration.backoff)
        var action = machine.start()
        var connection: PGConnection?
        while true {
            if signal.isStopped { action = machine.stop() }
            switch action {
            case .connect:
                do {
                    connection = try connectAndListen()
                    action = machine.connected()
                } catch {
                    logger.debug("listener connection attempt failed", metadata: ["error": "\(error)"])
                    action = machine.connectFailed("\(error)")
                }
            case .startListening(let reconnected):
                guard let listening = connection else {
                    action = machine.connectionLost("no connection")
                    continue
                }
                logger.info("listening for notifications", metadata: ["pg.channels": "\(configuration.channels)", "reconnected": "\(reconnected)"])
                deliver(.listening(reconnected: reconnected))
                do {
                    try pump(listening)
                    action = machine.stop()
                } catch {
                    connection = nil
                    action = machine.connectionLost("\(error)")
                }
            case .waitBeforeReconnecting(let delay, let report):
                if let report {
                    logger.info("listener connection lost; reconnecting", metadata: ["error": "\(report)"])
                    deliver(.connectionLost(report))
                }
                signal.sleep(delay)
                action = machine.waitElapsed()
            case .finish:
                return
            }
        }
    }

    private func connectAndListen() throws(PostgresError) -> PGConnection {
        let connection = try PGConnection(
            url: databaseURL,
            applicationName: configuration.applicationName,
            isCancelled: { signal.isStopped }
        )
        for channel in configuration.channels {
            try connection.listen(channel)
        }
        return connection
    }

    /// Delivers notifications until stop; throws when the connection breaks.
    private func pump(_ connection: PGConnection) throws {
        while !signal.isStopped {
            // Drain first: notifications may have been queued while a statement ran.
            while !signal.isStopped, let notification = connection.nextNotification() {
                let payload = try resolve(notification.payload, on: connection)
                deliver(.notification(channel: notification.channel, payload: payload))
            }
            if connection.waitForInput(timeout: configuration.pollInterval) {
                try connection.consumeInput()
            }
        }
    }

    /// The payload itself, or the parked payload it refers to (taken from the table, so it is delivered once).
    private func resolve(_ payload: String, on connection: PGConnection) throws -> String {
        guard let id = ParkedPayload.reference(in: payload) else { return payload }
        let rows = try connection.execute(
            "DELETE FROM realtime.change_payloads WHERE id = $1 RETURNING payload",
            params: [String(id)]
        )
        guard let parked = rows.first?["payload"] else { throw ParkedPayload.Missing(id: id) }
        return parked
    }
}

/// The `{"ref": <id>}` notifications that stand for payloads parked in `realtime.change_payloads`.
enum ParkedPayload {
    struct Missing: Error, CustomStringConvertible {
        var id: Int
        var description: String { "parked change payload \(id) is missing from realtime.change_payloads" }
    }

    /// The id when `payload` is a reference; change payloads start with `{"schema"`, so this is cheap to rule out.
    static func reference(in payload: String) -> Int? {
        guard payload.utf8.count <= 64, payload.hasPrefix("{\"ref\"") else { return nil }
        guard let object = (try? JSONValue.parse(payload))?.objectValue, object.count == 1 else { return nil }
        return object["ref"]?.intValue
    }
}
