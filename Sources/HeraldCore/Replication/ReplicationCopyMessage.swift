/// What the server sends inside the COPY of a `START_REPLICATION` stream.
public enum ReplicationServerMessage: Sendable, Equatable {
    /// 'w': WAL data, here one `pgoutput` message.
    case xLogData(XLogData)
    /// 'k': the server is alive; when `replyRequested`, answer with a status update at once.
    case keepalive(walEnd: LSN, sendTime: Int64, replyRequested: Bool)

    public struct XLogData: Sendable, Equatable {
        /// Where the data starts in the WAL (0 for some logical messages).
        public var start: LSN
        /// The end of the server's WAL when it sent this.
        public var walEnd: LSN
        /// Microseconds since 2000-01-01 UTC.
        public var sendTime: Int64
        public var data: ArraySlice<UInt8>

        public init(start: LSN, walEnd: LSN, sendTime: Int64, data: ArraySlice<UInt8>) {
            self.start = start
            self.walEnd = walEnd
            self.sendTime = sendTime
            self.data = data
        }
    }

    /// Decodes one CopyData payload.
    public static func decode(_ bytes: [UInt8]) throws(ReplicationDecodingError) -> ReplicationServerMessage {
        var reader = ByteReader(bytes[...])
        switch try reader.byte() {
        case UInt8(ascii: "w"):
            return .xLogData(XLogData(start: try reader.lsn(), walEnd: try reader.lsn(), sendTime: try reader.int64(), data: reader.rest()))
        case UInt8(ascii: "k"):
            let message = ReplicationServerMessage.keepalive(walEnd: try reader.lsn(), sendTime: try reader.int64(), replyRequested: try reader.byte() == 1)
            guard reader.isAtEnd else { throw ReplicationDecodingError("trailing bytes after a keepalive") }
            return message
        case let tag:
            throw ReplicationDecodingError("unknown replication message '\(String(decoding: [tag], as: UTF8.self))'")
        }
    }
}

/// 'r': the standby status update that tells the server how far Herald got. The slot's `confirmed_flush_lsn`
/// follows `flushed`, and the server may recycle WAL before it.
public struct StandbyStatusUpdate: Sendable, Equatable {
    public var written: LSN
    public var flushed: LSN
    public var applied: LSN
    /// Microseconds since 2000-01-01 UTC.
    public var clock: Int64
    /// Asks the server to answer with a keepalive at once.
    public var replyRequested: Bool

    public init(written: LSN, flushed: LSN, applied: LSN, clock: Int64, replyRequested: Bool = false) {
        self.written = written
        self.flushed = flushed
        self.applied = applied
        self.clock = clock
        self.replyRequested = replyRequested
    }

    /// The CopyData payload.
    public var bytes: [UInt8] {
        var bytes: [UInt8] = [UInt8(ascii: "r")]
        bytes.reserveCapacity(34)
        for value in [written.value, flushed.value, applied.value, UInt64(bitPattern: clock)] {
            for shift in stride(from: 56, through: 0, by: -8) {
                bytes.append(UInt8(truncatingIfNeeded: value >> UInt64(shift)))
            }
        }
        bytes.append(replyRequested ? 1 : 0)
        return bytes
    }
}
