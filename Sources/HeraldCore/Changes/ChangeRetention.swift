import NIOCore

/// How much recent history Herald keeps for clients that resume: changes committed within `duration`, at most
/// `maxBytes` of them (whichever is smaller).
public struct RetentionWindow: Sendable, Hashable {
    public var duration: Duration
    /// The approximate memory the kept changes may take.
    public var maxBytes: Int

    /// Creates a window (defaults: 5 minutes, 128 MiB).
    public init(duration: Duration = .seconds(300), maxBytes: Int = 128 << 20) {
        self.duration = duration
        self.maxBytes = maxBytes
    }

    var microseconds: Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds &* 1_000_000 &+ attoseconds / 1_000_000_000_000
    }
}

/// What resuming after a position comes to.
public enum ResumeDecision: Sendable, Equatable {
    /// Every change after the position, in order (possibly none): send them, then live changes.
    case replay([Change])
    /// Herald cannot tell what came after the position: the client must refetch. The text is the `system`
    /// message for the channel.
    case refetch(String)

    /// The decision for a resume position that is not a ``ChangePosition`` at all.
    public static func unreadable(_ text: String) -> ResumeDecision {
        .refetch("Cannot resume postgres_changes from '\(text)': it is not a change position. Refetch to catch up.")
    }
}

/// The recent changes of one stream, in order, in a ring buffer bounded by a ``RetentionWindow``, and the
/// decision whether a client may resume after a given position.
///
/// It covers every change after ``horizon`` up to ``newest``: a position in that range can be resumed from
/// exactly; an older one (evicted), a newer one (never seen) or one of another stream cannot.
public struct ChangeRetention: Sendable {
    private struct Entry: Sendable {
        var position: ChangePosition
        var change: Change
        var bytes: Int
    }

    public let window: RetentionWindow
    public let stream: ChangePosition.Stream
    /// Every change after this position is kept (until evicted, which moves the horizon to it).
    public private(set) var horizon: ChangePosition
    /// The last position recorded (the horizon while nothing has been).
    public private(set) var newest: ChangePosition
    private var entries = CircularBuffer<Entry>()
    public private(set) var bytes = 0

    /// A buffer whose changes are numbered by ``append(_:now:)`` from 1 in a process stream (trigger source).
    public init(epoch: UInt64, window: RetentionWindow) {
        self.init(horizon: ChangePosition(stream: .process(epoch: epoch), major: 0, minor: 0), window: window)
    }

    /// A buffer for the WAL stream that will receive every change committed at or after `lsn` (where the slot
    /// resumes); the changes carry their positions.
    public init(walFrom lsn: LSN, window: RetentionWindow) {
        let horizon =
            lsn.value == 0
            ? ChangePosition(stream: .wal, major: 0, minor: 0) : ChangePosition(stream: .wal, major: lsn.value - 1, minor: .max)
        self.init(horizon: horizon, window: window)
    }

    private init(horizon: ChangePosition, window: RetentionWindow) {
        self.window = window
        self.stream = horizon.stream
        self.horizon = horizon
        self.newest = horizon
    }

    public var count: Int { entries.count }

    /// The oldest kept position, if any.
    public var oldest: ChangePosition? { entries.first?.position }

    /// Records `change` and evicts what falls out of the window. Returns the change as recorded (with its
    /// position), or `nil` when it does not come after ``newest`` (a repeat), which is not recorded.
    /// - Parameter now: microseconds since the Unix epoch.
    public mutating func append(_ change: Change, now: Int64) -> Change? {
        var change = change
        switch stream {
        case .process:
            change.position = ChangePosition(stream: stream, major: newest.major + 1, minor: 0)
        case .wal:
            guard change.position?.stream == stream else { return nil }
        }
        guard let position = change.position, position > newest else { return nil }
        let size = Self.estimatedBytes(change)
        entries.append(Entry(position: position, change: change, bytes: size))
        bytes += size
        newest = position
        expire(now: now)
        return change
    }

    /// Evicts changes committed before the window, then the oldest while over the byte limit.
    public mutating func expire(now: Int64) {
        let oldestKept = now &- window.microseconds
        while let first = entries.first, first.change.commitTimestamp < oldestKept || bytes > window.maxBytes {
            entries.removeFirst()
            bytes -= first.bytes
            horizon = first.position
        }
    }

    /// Forgets everything: changes were lost upstream (a replication slot created again), so no position seen
    /// so far can be resumed from.
    public mutating func forgetAll() {
        entries.removeAll()
        bytes = 0
        newest = newest.minor == .max ? ChangePosition(stream: stream, major: newest.major + 1, minor: 0) : ChangePosition(stream: stream, major: newest.major, minor: newest.minor + 1)
        horizon = newest
    }

    /// Whether a client that has seen every change up to `position` can be sent exactly what came after it.
    public func resume(after position: ChangePosition) -> ResumeDecision {
        guard position.stream == stream else {
            return .refetch(
                "Cannot resume postgres_changes from \(position): it belongs to another change stream (Herald restarted without logical replication, or changed its change source). Refetch to catch up."
            )
        }
        guard position >= horizon else {
            return .refetch("Cannot resume postgres_changes from \(position): it is older than the changes this server keeps. Refetch to catch up.")
        }
        guard position <= newest else {
            return .refetch("Cannot resume postgres_changes from \(position): this server has not seen that position. Refetch to catch up.")
        }
        // The first kept change after `position` (entries are sorted by position).
        var low = 0
        var high = entries.count
        while low < high {
            let middle = (low + high) / 2
            if entries[entries.index(entries.startIndex, offsetBy: middle)].position <= position {
                low = middle + 1
            } else {
                high = middle
            }
        }
        return .replay(entries[entries.index(entries.startIndex, offsetBy: low)...].map(\.change))
    }

    /// A rough count of the memory a kept change takes: its strings plus a fixed cost per value.
    static func estimatedBytes(_ change: Change) -> Int {
        func size(_ value: JSONValue) -> Int {
            switch value {
            case .null, .bool: 16
            case .number(let text), .string(let text): 32 + text.utf8.count
            case .array(let elements): elements.reduce(32) { $0 + size($1) }
            case .object(let object): size(object)
            }
        }
        func size(_ object: JSONObject) -> Int {
            object.members.reduce(32) { $0 + 32 + $1.key.utf8.count + size($1.value) }
        }
        let columns = change.columns.reduce(0) { $0 + 48 + $1.name.utf8.count + $1.type.utf8.count }
        return 256 + change.schema.utf8.count + change.table.utf8.count + columns
            + (change.record.map(size) ?? 0) + (change.oldRecord.map(size) ?? 0)
    }
}
