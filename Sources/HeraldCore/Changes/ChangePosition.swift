/// Where a change sits in the stream of changes its source produced, so that a client can say "everything after
/// this one". Positions of one stream are totally ordered in commit order; positions of different streams are
/// unrelated (a resume from another stream is refused).
///
/// - Replication source: stream ``Stream/wal``, `major` the transaction's commit LSN, `minor` the change's index in
///   its transaction. It survives Herald restarts (the WAL is the database's).
/// - Trigger source: stream ``Stream/process(epoch:)``, a random epoch drawn when Herald starts, `major` a sequence
///   number counted from 1, `minor` 0. NOTIFY keeps nothing, so it cannot survive a restart: a new process has a
///   new epoch.
///
/// Written as text (``description``, parsed by ``init(_:)``) with fixed-width hexadecimal numbers, so positions
/// of one stream also sort as strings: `wal:0000000001A2B3C8:00000003`,
/// `trigger-9F86D081884C7D65:000000000000002A:00000000`.
public struct ChangePosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The stream a position belongs to.
    public enum Stream: Sendable, Hashable, Comparable {
        /// The database's write-ahead log (replication source).
        case wal
        /// One Herald process (trigger source).
        case process(epoch: UInt64)
    }

    public var stream: Stream
    public var major: UInt64
    public var minor: UInt32

    public init(stream: Stream, major: UInt64, minor: UInt32) {
        self.stream = stream
        self.major = major
        self.minor = minor
    }

    /// The position of the `index`-th row change (from 0) of the transaction whose commit record is at `commitLSN`.
    public static func wal(commitLSN: LSN, index: UInt32) -> ChangePosition {
        ChangePosition(stream: .wal, major: commitLSN.value, minor: index)
    }

    /// Parses the text form; `nil` for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[1].count == 16, parts[2].count == 8,
            let major = UInt64(parts[1], radix: 16), let minor = UInt32(parts[2], radix: 16)
        else { return nil }
        if parts[0] == "wal" {
            stream = .wal
        } else if parts[0].hasPrefix("trigger-"), parts[0].count == 24, let epoch = UInt64(parts[0].dropFirst(8), radix: 16) {
            stream = .process(epoch: epoch)
        } else {
            return nil
        }
        self.major = major
        self.minor = minor
    }

    public var description: String {
        let prefix =
            switch stream {
            case .wal: "wal"
            case .process(let epoch): "trigger-" + Self.hex(epoch, width: 16)
            }
        return prefix + ":" + Self.hex(major, width: 16) + ":" + Self.hex(UInt64(minor), width: 8)
    }

    public static func < (lhs: ChangePosition, rhs: ChangePosition) -> Bool {
        (lhs.stream, lhs.major, lhs.minor) < (rhs.stream, rhs.major, rhs.minor)
    }

    private static func hex(_ value: UInt64, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: width - digits.count) + digits
    }
}
