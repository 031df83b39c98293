import CLibPQ

/// A NOTIFY received on a connection that LISTENs.
public struct PGNotification: Sendable, Hashable {
    /// The channel name.
    public var channel: String
    /// The payload (empty when NOTIFY had none).
    public var payload: String
    /// The server process that sent it.
    public var backendPID: Int32

    /// Creates a notification.
    public init(channel: String, payload: String, backendPID: Int32) {
        self.channel = channel
        self.payload = payload
        self.backendPID = backendPID
    }
}

/// LISTEN support: wait on the socket, read what arrived, drain the queued notifications.
extension PGConnection {
    /// Runs `LISTEN "<channel>"` with the name quoted as an identifier.
    public func listen(_ channel: String) throws(PostgresError) {
        _ = try execute("LISTEN " + escapeIdentifier(channel))
    }

    /// Waits up to `timeout` for the server to send something; `true` when there is input (or an error) to read.
    public func waitForInput(timeout: Duration) -> Bool {
        SocketWait.wait(socket: PQsocket(handle), timeout: timeout)
    }

    /// Reads whatever the server sent (PQconsumeInput) so that notifications become available.
    /// - Throws: ``PostgresError`` with code `.connectionLost` when the connection broke.
    public func consumeInput() throws(PostgresError) {
        if PQconsumeInput(handle) == 0 || !isConnected {
            throw connectionError(code: .connectionLost)
        }
    }

    /// The next queued notification, oldest first; `nil` when none is queued.
    /// Notifications that arrive while a statement runs are queued too, after the earlier ones.
    public func nextNotification() -> PGNotification? {
        guard let notify = PQnotifies(handle) else { return nil }
        defer { PQfreemem(notify) }
        return PGNotification(
            channel: String(cString: notify.pointee.relname),
            payload: notify.pointee.extra.map { String(cString: $0) } ?? "",
            backendPID: notify.pointee.be_pid
        )
    }
}
