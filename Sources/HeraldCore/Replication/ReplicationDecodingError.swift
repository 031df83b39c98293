/// A replication message Herald cannot read: truncated, of an unknown kind, or in a form it did not ask for.
public struct ReplicationDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, in a few words.
    public var reason: String

    public init(_ reason: String) {
        self.reason = reason
    }

    public var description: String { "cannot decode replication message: \(reason)" }
}

/// Reads the big-endian integers and NUL-terminated strings of the replication protocol.
struct ByteReader {
    private let bytes: ArraySlice<UInt8>
    private(set) var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        self.index = bytes.startIndex
    }

    var isAtEnd: Bool { index >= bytes.endIndex }

    mutating func byte() throws(ReplicationDecodingError) -> UInt8 {
        guard index < bytes.endIndex else { throw truncated }
        defer { index += 1 }
        return bytes[index]
    }

    mutating func int16() throws(ReplicationDecodingError) -> Int16 {
        Int16(truncatingIfNeeded: try integer(width: 2))
    }

    mutating func int32() throws(ReplicationDecodingError) -> Int32 {
        Int32(truncatingIfNeeded: try integer(width: 4))
    }

    mutating func uint32() throws(ReplicationDecodingError) -> UInt32 {
        UInt32(truncatingIfNeeded: try integer(width: 4))
    }

    mutating func int64() throws(ReplicationDecodingError) -> Int64 {
        Int64(bitPattern: try integer(width: 8))
    }

    mutating func lsn() throws(ReplicationDecodingError) -> LSN {
        LSN(try integer(width: 8))
    }

    /// A NUL-terminated UTF-8 string.
    mutating func cString() throws(ReplicationDecodingError) -> String {
        guard let end = bytes[index...].firstIndex(of: 0) else { throw truncated }
        defer { index = end + 1 }
        return String(decoding: bytes[index..<end], as: UTF8.self)
    }

    /// The next `count` bytes.
    mutating func bytes(_ count: Int) throws(ReplicationDecodingError) -> ArraySlice<UInt8> {
        guard count >= 0, bytes.endIndex - index >= count else { throw truncated }
        defer { index += count }
        return bytes[index..<(index + count)]
    }

    /// Everything left.
    mutating func rest() -> ArraySlice<UInt8> {
        defer { index = bytes.endIndex }
        return bytes[index...]
    }

    private mutating func integer(width: Int) throws(ReplicationDecodingError) -> UInt64 {
        guard bytes.endIndex - index >= width else { throw truncated }
        var value: UInt64 = 0
        for offset in 0..<width {
            value = value << 8 | UInt64(bytes[index + offset])
        }
        index += width
        return value
    }

    private var truncated: ReplicationDecodingError {
        ReplicationDecodingError("message ends early (at byte \(index - bytes.startIndex) of \(bytes.count))")
    }
}
