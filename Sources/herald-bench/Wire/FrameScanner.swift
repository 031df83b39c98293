/// Reads the frames Herald sends at the byte level, without decoding JSON: the harness only needs to know what a
/// frame is and to pull a few integers out of it. Every function takes the frame's bytes and offsets into them.
enum FrameScanner {
    /// The head of a V2 text frame `[join_ref, ref, "topic", "event", payload]`.
    struct V2Head: Equatable {
        /// The ref's characters (without quotes), or nil when the ref is `null`.
        var ref: Range<Int>?
        /// The topic's characters (without quotes).
        var topic: Range<Int>
        var event: ServerEvent
        /// Where the payload (the fifth element) starts.
        var payloadStart: Int
    }

    /// Parses the first four elements. Refs and topics are the harness's own (`j12`, `realtime:p3`), so they
    /// contain no escapes; anything else makes the head unreadable (nil).
    static func v2Head(_ bytes: UnsafeRawBufferPointer) -> V2Head? {
        guard bytes.first == UInt8(ascii: "[") else { return nil }
        var index = 1
        guard readElement(bytes, &index) != nil else { return nil }
        guard let ref = readElement(bytes, &index) else { return nil }
        guard case .string(let topic)? = readElement(bytes, &index) else { return nil }
        guard case .string(let event)? = readElement(bytes, &index) else { return nil }
        return V2Head(ref: ref.range, topic: topic, event: ServerEvent(bytes[event]), payloadStart: index)
    }

    private enum Element {
        case null
        case string(Range<Int>)

        var range: Range<Int>? {
            if case .string(let range) = self { return range }
            return nil
        }
    }

    /// Reads `null` or a string without escapes followed by a comma; leaves `index` after the comma.
    private static func readElement(_ bytes: UnsafeRawBufferPointer, _ index: inout Int) -> Element? {
        let element: Element
        if index + 4 <= bytes.count, bytes[index] == UInt8(ascii: "n") {
            element = .null
            index += 4
        } else if index < bytes.count, bytes[index] == UInt8(ascii: "\"") {
            let start = index + 1
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                if bytes[end] == UInt8(ascii: "\\") { return nil }
                end += 1
            }
            guard end < bytes.count else { return nil }
            element = .string(start..<end)
            index = end + 1
        } else {
            return nil
        }
        guard index < bytes.count, bytes[index] == UInt8(ascii: ",") else { return nil }
        index += 1
        return element
    }

    /// The first index of `marker` in `bytes[range]`.
    static func firstIndex(of marker: [UInt8], in bytes: UnsafeRawBufferPointer, range: Range<Int>) -> Int? {
        guard let first = marker.first, range.count >= marker.count else { return nil }
        var index = range.lowerBound
        let last = range.upperBound - marker.count
        while index <= last {
            if bytes[index] == first {
                var matched = 1
                while matched < marker.count, bytes[index + matched] == marker[matched] { matched += 1 }
                if matched == marker.count { return index }
            }
            index += 1
        }
        return nil
    }

    /// A non-negative decimal integer starting at `index`, and the index after it.
    static func integer(in bytes: UnsafeRawBufferPointer, at index: Int) -> (value: UInt64, end: Int)? {
        var value: UInt64 = 0
        var end = index
        while end < bytes.count, bytes[end] >= UInt8(ascii: "0"), bytes[end] <= UInt8(ascii: "9") {
            value = value &* 10 &+ UInt64(bytes[end] - UInt8(ascii: "0"))
            end += 1
        }
        return end > index ? (value, end) : nil
    }

    /// Calls `body` with the integer after every occurrence of `marker` in `bytes[range]`.
    static func forEachInteger(after marker: [UInt8], in bytes: UnsafeRawBufferPointer, range: Range<Int>, _ body: (UInt64) -> Void) {
        var start = range.lowerBound
        while let found = firstIndex(of: marker, in: bytes, range: start..<range.upperBound) {
            guard let (value, end) = integer(in: bytes, at: found + marker.count) else {
                start = found + marker.count
                continue
            }
            body(value)
            start = end
        }
    }

    /// The part of a `presence_diff` payload holding the joins: from `payloadStart` up to `"leaves":`
    /// (Herald writes `{"joins":{…},"leaves":{…}}` in that order).
    static func joinsSection(of bytes: UnsafeRawBufferPointer, payloadStart: Int) -> Range<Int> {
        let leaves = firstIndex(of: Markers.leaves, in: bytes, range: payloadStart..<bytes.count) ?? bytes.count
        return payloadStart..<leaves
    }

    /// Every tracked meta in `range` written by the harness (`…"t":<sent ns>,"m":<member>…`): calls `body` with
    /// the send time and the member.
    static func forEachTrackedMeta(in bytes: UnsafeRawBufferPointer, range: Range<Int>, _ body: (_ sentAt: UInt64, _ member: UInt64) -> Void) {
        var start = range.lowerBound
        while let found = firstIndex(of: Markers.sentAt, in: bytes, range: start..<range.upperBound) {
            start = found + Markers.sentAt.count
            guard let (sentAt, end) = integer(in: bytes, at: start) else { continue }
            start = end
            guard end + Markers.memberAfterTime.count <= range.upperBound,
                firstIndex(of: Markers.memberAfterTime, in: bytes, range: end..<(end + Markers.memberAfterTime.count)) == end,
                let (member, memberEnd) = integer(in: bytes, at: end + Markers.memberAfterTime.count)
            else { continue }
            start = memberEnd
            body(sentAt, member)
        }
    }

    /// Whether a `phx_reply` payload reports `"status":"ok"`.
    static func replyIsOK(_ bytes: UnsafeRawBufferPointer, payloadStart: Int) -> Bool {
        let end = min(bytes.count, payloadStart + Markers.statusOK.count)
        return firstIndex(of: Markers.statusOK, in: bytes, range: payloadStart..<end) == payloadStart
    }
}

/// The byte strings the scanner looks for.
enum Markers {
    static let leaves = Array(#""leaves":"#.utf8)
    /// The send time in tracked presence payloads, written first: `{"t":…,"m":…}`.
    static let sentAt = Array(#""t":"#.utf8)
    static let memberAfterTime = Array(#","m":"#.utf8)
    static let member = Array(#""m":"#.utf8)
    /// The send time in broadcast payloads.
    static let broadcastSentAt = Array(#""bt":"#.utf8)
    static let statusOK = Array(#"{"status":"ok""#.utf8)
    static let statusError = Array(#""status":"error""#.utf8)
}

/// The events of server frames the harness tells apart.
enum ServerEvent: Equatable {
    case reply
    case presenceDiff
    case presenceState
    case broadcast
    case postgresChanges
    case system
    case close
    case error
    case other

    init(_ bytes: UnsafeRawBufferPointer.SubSequence) {
        switch bytes.count {
        case 9 where bytes.elementsEqual("phx_reply".utf8): self = .reply
        case 13 where bytes.elementsEqual("presence_diff".utf8): self = .presenceDiff
        case 14 where bytes.elementsEqual("presence_state".utf8): self = .presenceState
        case 9 where bytes.elementsEqual("broadcast".utf8): self = .broadcast
        case 16 where bytes.elementsEqual("postgres_changes".utf8): self = .postgresChanges
        case 6 where bytes.elementsEqual("system".utf8): self = .system
        case 9 where bytes.elementsEqual("phx_close".utf8): self = .close
        case 9 where bytes.elementsEqual("phx_error".utf8): self = .error
        default: self = .other
        }
    }
}
