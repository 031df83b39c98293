import CLibPQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Establishing a connection without blocking for longer than a poll slice (PQconnectStartParams + PQconnectPoll).
extension PGConnection {
    /// Rejects strings libpq cannot parse, so a typo reads as a bad URL rather than as an unreachable server.
    static func validate(url: String) throws(PostgresError) {
        var errorMessage: UnsafeMutablePointer<CChar>?
        if let options = PQconninfoParse(url, &errorMessage) {
            PQconninfoFree(options)
            return
        }
        let message = errorMessage.map { String(cString: $0) } ?? "cannot parse the connection string"
        errorMessage.map { PQfreemem($0) }
        throw PostgresError(code: .invalidURL, message: DatabaseURL.redact(message, secretsOf: url))
    }

    /// Starts a non-blocking connection attempt with `expand_dbname` (the `dbname` value may be a full URL).
    static func startConnecting(_ parameters: [(keyword: String, value: String)]) -> OpaquePointer? {
        let keywords = parameters.map { strdup($0.keyword) } + [nil]
        let values = parameters.map { strdup($0.value) } + [nil]
        defer { (keywords + values).forEach { free($0) } }
        let keywordPointers = keywords.map { $0.map { UnsafePointer($0) } }
        let valuePointers = values.map { $0.map { UnsafePointer($0) } }
        return keywordPointers.withUnsafeBufferPointer { keywordBuffer in
            valuePointers.withUnsafeBufferPointer { valueBuffer in
                PQconnectStartParams(keywordBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
        }
    }

    /// Drives PQconnectPoll until the connection is up, failed, cancelled or past `deadline`.
    func finishConnecting(deadline: ContinuousClock.Instant, isCancelled: () -> Bool) throws(PostgresError) {
        // Just after PQconnectStart, behave as if PQconnectPoll had asked to wait for writing.
        var status = PGRES_POLLING_WRITING
        while true {
            if PQstatus(handle) == CONNECTION_BAD || status == PGRES_POLLING_FAILED {
                throw connectionError(code: .connectionFailed)
            }
            if status == PGRES_POLLING_OK { return }
            // The socket may change between attempts (several hosts, SSL retry), so ask for it every time.
            while !SocketWait.wait(socket: PQsocket(handle), forWriting: status == PGRES_POLLING_WRITING, timeout: .milliseconds(100)) {
                if isCancelled() {
                    throw PostgresError(code: .connectionFailed, message: "connection attempt cancelled")
                }
                if ContinuousClock.now >= deadline {
                    throw PostgresError(code: .connectionFailed, message: "connection attempt timed out")
                }
            }
            status = PQconnectPoll(handle)
        }
    }
}
