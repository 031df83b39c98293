import NIOCore

/// The Phoenix V2 messages the generator sends (reference sections 1.3-1.5, 4.1, 5.1). Refs start with a letter
/// naming what they ask for (`j` join, `l` leave, `t` track, `h` heartbeat), so a reply is classified by its
/// ref's first byte without bookkeeping.
enum ClientMessages {
    enum RefKind: UInt8 {
        case join = 0x6A  // j
        case leave = 0x6C  // l
        case track = 0x74  // t
        case heartbeat = 0x68  // h
    }

    static func heartbeat(ref: Int) -> String {
        #"[null,"h\#(ref)","phoenix","heartbeat",{}]"#
    }

    /// A join with broadcast `ack: false` and `self` as given; presence enabled (with `presenceKey`) or not;
    /// `postgresChanges` is the JSON array of bindings, `accessToken` the channel's own token.
    static func join(
        topic: String, joinRef: Int, presenceKey: String?, selfBroadcast: Bool = false, postgresChanges: String = "[]", accessToken: String? = nil
    ) -> String {
        let presence = presenceKey.map { #"{"enabled":true,"key":"\#($0)"}"# } ?? #"{"enabled":false}"#
        let config = #"{"broadcast":{"self":\#(selfBroadcast),"ack":false},"presence":\#(presence),"postgres_changes":\#(postgresChanges),"private":false}"#
        let token = accessToken.map { #","access_token":"\#($0)""# } ?? ""
        return #"["j\#(joinRef)","j\#(joinRef)","\#(topic)","phx_join",{"config":\#(config)\#(token)}]"#
    }

    static func leave(topic: String, joinRef: Int, ref: Int) -> String {
        #"["j\#(joinRef)","l\#(ref)","\#(topic)","phx_leave",{}]"#
    }

    /// A track whose meta carries the send time and the member, in this order (what `FrameScanner` reads back).
    static func track(topic: String, joinRef: Int, ref: Int, sentAt: UInt64, member: Int) -> String {
        #"["j\#(joinRef)","t\#(ref)","\#(topic)","presence",{"type":"presence","event":"track","payload":{"t":\#(sentAt),"m":\#(member)}}]"#
    }

    /// The user payload of a broadcast: the send time, then padding up to about `size` bytes.
    static func broadcastPayload(sentAt: UInt64, size: Int) -> String {
        let head = #"{"bt":\#(sentAt),"pad":""#
        return head + String(repeating: "x", count: max(0, size - head.utf8.count - 2)) + #""}"#
    }

    /// A JSON broadcast push (`[join_ref,null,topic,"broadcast",{"type","event","payload"}]`), relayed verbatim.
    static func textBroadcast(topic: String, joinRef: Int, payload: String) -> String {
        #"["j\#(joinRef)",null,"\#(topic)","broadcast",{"type":"broadcast","event":"b","payload":\#(payload)}]"#
    }

    /// A V2 binary user broadcast push (kind 3, JSON encoding), as realtime-js v2 sends every broadcast.
    static func writeBinaryBroadcast(topic: String, joinRef: Int, payload: String, into buffer: inout ByteBuffer) {
        let joinRefText = "j\(joinRef)"
        let event = "b"
        let length = 7 + joinRefText.utf8.count + topic.utf8.count + event.utf8.count + payload.utf8.count
        WebSocketWire.writeClientFrameHeader(.binary, length: length, into: &buffer)
        buffer.writeInteger(UInt8(3))
        buffer.writeInteger(UInt8(joinRefText.utf8.count))
        buffer.writeInteger(UInt8(0))  // no ref: no ack requested
        buffer.writeInteger(UInt8(topic.utf8.count))
        buffer.writeInteger(UInt8(event.utf8.count))
        buffer.writeInteger(UInt8(0))  // no metadata
        buffer.writeInteger(UInt8(1))  // JSON payload
        buffer.writeString(joinRefText)
        buffer.writeString(topic)
        buffer.writeString(event)
        buffer.writeString(payload)
    }
}
