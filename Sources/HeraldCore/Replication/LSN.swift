/// A position in PostgreSQL's write-ahead log (`pg_lsn`), written `16/B374D848` (high and low 32 bits in hex).
public struct LSN: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The byte position.
    public var value: UInt64

    /// `0/0`: "wherever the slot is" when starting replication.
    public static let zero = LSN(0)

    /// Creates a position from its byte value.
    public init(_ value: UInt64) {
        self.value = value
    }

    /// Parses `X/Y` as PostgreSQL prints it; `nil` for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...8).contains(parts[0].count), (1...8).contains(parts[1].count),
            let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16)
        else { return nil }
        value = high << 32 | low
    }

    public var description: String {
        String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    public static func < (lhs: LSN, rhs: LSN) -> Bool { lhs.value < rhs.value }
}

/// Replication timestamps count microseconds from 2000-01-01 00:00 UTC; ``Change`` uses the Unix epoch.
public enum PostgresEpoch {
    /// Microseconds between 1970-01-01 and 2000-01-01.
    public static let unixOffsetMicroseconds: Int64 = 946_684_800_000_000

    /// A replication timestamp as microseconds since the Unix epoch.
    public static func unixMicroseconds(_ postgresMicroseconds: Int64) -> Int64 {
        postgresMicroseconds &+ unixOffsetMicroseconds
    }

    /// Microseconds since the Unix epoch as a replication timestamp.
    public static func postgresMicroseconds(_ unixMicroseconds: Int64) -> Int64 {
        unixMicroseconds &- unixOffsetMicroseconds
    }
}
