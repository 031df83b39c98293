/// Makes `phx_ref` values the way Phoenix's tracker does: URL-safe base64 of 12 bytes,
/// `time_ns:64 | node:16 | counter:16` (big-endian), i.e. 16 characters. Clients treat refs as opaque;
/// the only requirement is that no two metas ever share one.
///
/// A value with no clock of its own: the caller passes the time, so tests are deterministic.
public struct PresenceRefGenerator: Sendable {
    /// Tells this server's refs apart from another node's (Phoenix hashes node and process here).
    public let node: UInt16
    private var counter: UInt16
    private var lastTime: UInt64 = 0

    /// - Parameters:
    ///   - node: this server's identifier, e.g. random at start-up.
    ///   - counter: the counter value of the first ref (a seed for tests).
    public init(node: UInt16, counter: UInt16 = 0) {
        self.node = node
        self.counter = counter
    }

    /// Returns a new ref.
    /// - Parameter now: wall-clock time in nanoseconds since the Unix epoch. If it does not advance
    ///   (coarse or stepped-back clock) the generator moves one nanosecond past the previous ref,
    ///   so refs from one generator never repeat.
    public mutating func next(now: UInt64) -> String {
        let time = max(now, lastTime &+ 1)
        lastTime = time
        let count = counter
        counter &+= 1
        return Self.encode(time: time, node: node, counter: count)
    }

    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// 96 bits = 16 sextets exactly, so no padding; taken from the most significant end.
    private static func encode(time: UInt64, node: UInt16, counter: UInt16) -> String {
        let low = UInt32(node) << 16 | UInt32(counter)
        return String(unsafeUninitializedCapacity: 16) { output in
            for index in 0..<16 {
                let shift = 90 - 6 * index  // bit offset of this sextet within the 96-bit value
                let sextet =
                    shift >= 32
                    ? time >> UInt64(shift - 32)
                    : time << UInt64(32 - shift) | UInt64(low >> UInt32(shift))
                output[index] = alphabet[Int(sextet & 0x3F)]
            }
            return 16
        }
    }
}
