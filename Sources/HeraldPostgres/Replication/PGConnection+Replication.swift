import CLibPQ
import HeraldCore

/// The streaming replication protocol over libpq: a `replication=database` connection, `START_REPLICATION`,
/// then CopyData messages both ways (PQgetCopyData / PQputCopyData) in non-blocking mode.
extension PGConnection {
    /// What ``readCopyData()`` found.
    enum CopyRead {
        /// One CopyData message.
        case data([UInt8])
        /// Nothing complete yet: wait for the socket, ``consumeInput()``, then read again.
        case wouldBlock
    }

    /// Opens a logical replication connection (`replication=database`) to the URL's database.
    static func replicationConnection(url: String, applicationName: String, isCancelled: () -> Bool) throws(PostgresError) -> PGConnection {
        try PGConnection(
            url: url,
            applicationName: applicationName,
            timeout: .seconds(10),
            forcedParameters: [("replication", "database")],
            isCancelled: isCancelled
        )
    }

    /// Runs `START_REPLICATION ...` and switches to non-blocking CopyBoth mode.
    /// - Throws: ``PostgresError`` with the server's reason (unknown slot, slot in use, ...).
    func startReplication(_ command: String) throws(PostgresError) {
        guard let result = PQexec(handle, command) else {
            throw connectionError(code: isConnected ? .server : .connectionLost)
        }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COPY_BOTH else { throw serverError(result) }
        guard PQsetnonblocking(handle, 1) == 0 else { throw connectionError(code: .connectionLost) }
    }

    /// The next CopyData message, if one has arrived completely.
    /// - Throws: ``PostgresError`` when the stream ended (the server's error when it sent one) or broke.
    func readCopyData() throws(PostgresError) -> CopyRead {
        var buffer: UnsafeMutablePointer<CChar>?
        let length = PQgetCopyData(handle, &buffer, 1)
        if length > 0, let buffer {
            defer { PQfreemem(buffer) }
            return .data(Array(UnsafeRawBufferPointer(start: buffer, count: Int(length))))
        }
        if length == 0 { return .wouldBlock }
        // -1: the server ended the COPY, normally with an error result; -2: the connection failed.
        var failure = connectionError(code: .connectionLost)
        while let result = PQgetResult(handle) {
            if PQresultStatus(result) == PGRES_FATAL_ERROR {
                failure = serverError(result)
                failure.code = .connectionLost
            }
            PQclear(result)
            if !isConnected { break }
        }
        throw failure
    }

    /// Queues one CopyData message and sends as much as the socket takes; ``flush()`` sends the rest.
    func sendCopyData(_ bytes: [UInt8]) throws(PostgresError) {
        let queued = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { PQputCopyData(handle, $0.baseAddress, Int32($0.count)) }
        }
        guard queued == 1 else { throw connectionError(code: .connectionLost) }
        try flush()
    }

    /// Sends queued output without blocking.
    func flush() throws(PostgresError) {
        guard PQflush(handle) >= 0 else { throw connectionError(code: .connectionLost) }
    }
}
