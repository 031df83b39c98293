import HeraldCore
import NIOCore
import Testing

@Suite struct BinaryFrameTests {
    private func bytes(_ parts: [UInt8]...) -> ByteBuffer { ByteBuffer(bytes: parts.flatMap { $0 }) }
    private func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func encoded(_ frame: BinaryFrame) throws -> [UInt8] {
        var buffer = ByteBuffer()
        try frame.encode(into: &buffer)
        return Array(buffer.readableBytesView)
    }

    // MARK: Reference appendix B.2

    @Test func decodesTheReferenceUserBroadcastPush() throws {
        let frame = bytes(
            [0x03, 0x01, 0x01, 0x0E, 0x03, 0x00, 0x01],
            utf8("1"),
            utf8("2"),
            utf8("realtime:room1"),
            utf8("msg"),
            utf8(#"{"text":"hi"}"#)
        )
        let decoded = try BinaryFrame(decoding: frame, sentBy: .client)
        #expect(
            decoded
                == .userBroadcastPush(
                    joinRef: "1",
                    ref: "2",
                    topic: "realtime:room1",
                    event: "msg",
                    metadata: nil,
                    encoding: .json,
                    payload: ByteBuffer(string: #"{"text":"hi"}"#)
                )
        )
    }

    @Test func encodesTheReferenceUserBroadcastByteForByte() throws {
        let frame = BinaryFrame.userBroadcast(
            topic: "realtime:room1",
            event: "msg",
            metadata: nil,
            encoding: .json,
            payload: ByteBuffer(string: #"{"text":"hi"}"#)
        )
        let expected: [UInt8] = [0x04, 0x0E, 0x03, 0x00, 0x01] + utf8("realtime:room1") + utf8("msg") + utf8(#"{"text":"hi"}"#)
        #expect(try encoded(frame) == expected)
    }

    @Test func encodesDatabaseMetadataWithItsLength() throws {
        let id = "0b7e4a8e-6b2c-4b53-9f0e-3d9a3c2a1f00"
        let frame = BinaryFrame.userBroadcast(
            topic: "realtime:room1",
            event: "event",
            metadata: ["id": .string(id)],
            encoding: .json,
            payload: ByteBuffer(string: #"{"value":1,"id":"\#(id)"}"#)
        )
        let expected: [UInt8] =
            [0x04, 0x0E, 0x05, 0x2D, 0x01] + utf8("realtime:room1") + utf8("event") + utf8(#"{"id":"\#(id)"}"#)
            + utf8(#"{"value":1,"id":"\#(id)"}"#)
        #expect(try encoded(frame) == expected)
    }

    // MARK: Decoding

    @Test func decodesAPushWithJSONPayload() throws {
        let frame = bytes(
            [0x00, 0x01, 0x01, 0x0E, 0x08],
            utf8("1"),
            utf8("7"),
            utf8("realtime:room1"),
            utf8("presence"),
            utf8(#"{"type":"presence"}"#)
        )
        let decoded = try BinaryFrame(decoding: frame, sentBy: .client)
        #expect(
            decoded
                == .push(joinRef: "1", ref: "7", topic: "realtime:room1", event: "presence", payload: ByteBuffer(string: #"{"type":"presence"}"#))
        )
    }

    @Test func readsEmptyRefsAsNilAndKeepsEmptyPayloads() throws {
        let frame = bytes([0x03, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00], utf8("t"), utf8("e"))
        let decoded = try BinaryFrame(decoding: frame, sentBy: .client)
        #expect(
            decoded
                == .userBroadcastPush(joinRef: nil, ref: nil, topic: "t", event: "e", metadata: nil, encoding: .binary, payload: ByteBuffer())
        )
    }

    @Test func readsAnyNonZeroEncodingAsJSON() throws {
        let frame = bytes([0x03, 0x00, 0x00, 0x01, 0x01, 0x00, 0x07], utf8("t"), utf8("e"), utf8("1"))
        guard case .userBroadcastPush(_, _, _, _, _, let encoding, _) = try BinaryFrame(decoding: frame, sentBy: .client) else {
            Issue.record("wrong kind")
            return
        }
        #expect(encoding == .json)
    }

    @Test func decodesClientMetadataAndRawBinaryPayloads() throws {
        let payload: [UInt8] = [0x00, 0xFF, 0xC0, 0x80]
        let frame = bytes([0x03, 0x00, 0x01, 0x01, 0x01, 0x0B, 0x00], utf8("9"), utf8("t"), utf8("e"), utf8(#"{"k":[1,2]}"#), payload)
        let decoded = try BinaryFrame(decoding: frame, sentBy: .client)
        #expect(
            decoded
                == .userBroadcastPush(
                    joinRef: nil,
                    ref: "9",
                    topic: "t",
                    event: "e",
                    metadata: ["k": [1, 2]],
                    encoding: .binary,
                    payload: ByteBuffer(bytes: payload)
                )
        )
    }

    @Test func decodesFromTheBufferReaderIndex() throws {
        var frame = bytes([0xAA, 0xBB], [0x04, 0x01, 0x01, 0x00, 0x01], utf8("t"), utf8("e"), utf8("{}"))
        frame.moveReaderIndex(forwardBy: 2)
        #expect(
            try BinaryFrame(decoding: frame, sentBy: .server)
                == .userBroadcast(topic: "t", event: "e", metadata: nil, encoding: .json, payload: ByteBuffer(string: "{}"))
        )
    }

    // MARK: Rejections

    @Test func rejectsAnEmptyFrame() {
        #expect(throws: BinaryFrameError.emptyFrame) { try BinaryFrame(decoding: ByteBuffer(), sentBy: .client) }
    }

    @Test(arguments: [UInt8(1), 2, 4, 5, 0x7F, 0xFF])
    func rejectsKindsAClientMayNotSend(kind: UInt8) {
        let frame = bytes([kind, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: BinaryFrameError.unsupportedKind(kind)) { try BinaryFrame(decoding: frame, sentBy: .client) }
    }

    @Test(arguments: [UInt8(0), 1, 2, 3, 5])
    func rejectsKindsTheServerNeverSends(kind: UInt8) {
        let frame = bytes([kind, 0, 0, 0, 0, 0, 0, 0])
        #expect(throws: BinaryFrameError.unsupportedKind(kind)) { try BinaryFrame(decoding: frame, sentBy: .server) }
    }

    @Test func rejectsTruncatedHeaders() {
        #expect(throws: BinaryFrameError.truncatedHeader) { try BinaryFrame(decoding: bytes([0x00, 0, 0, 0]), sentBy: .client) }
        #expect(throws: BinaryFrameError.truncatedHeader) { try BinaryFrame(decoding: bytes([0x03, 0, 0, 0, 0, 0]), sentBy: .client) }
        #expect(throws: BinaryFrameError.truncatedHeader) { try BinaryFrame(decoding: bytes([0x04, 0, 0, 0]), sentBy: .server) }
    }

    @Test func rejectsLengthsRunningPastTheFrame() {
        let shortTopic = bytes([0x03, 0x01, 0x01, 0x0E, 0x03, 0x00, 0x01], utf8("1"), utf8("2"), utf8("realtime:room"))
        #expect(throws: BinaryFrameError.fieldExceedsFrame(.topic)) { try BinaryFrame(decoding: shortTopic, sentBy: .client) }
        let hugeMetadata = bytes([0x03, 0x00, 0x00, 0x01, 0x01, 0xFF, 0x01], utf8("t"), utf8("e"), utf8("{}"))
        #expect(throws: BinaryFrameError.fieldExceedsFrame(.metadata)) { try BinaryFrame(decoding: hugeMetadata, sentBy: .client) }
        let shortJoinRef = bytes([0x00, 0x05, 0x00, 0x00, 0x00], utf8("1"))
        #expect(throws: BinaryFrameError.fieldExceedsFrame(.joinRef)) { try BinaryFrame(decoding: shortJoinRef, sentBy: .client) }
    }

    @Test func rejectsInvalidUTF8InEachHeaderString() {
        let invalid: [UInt8] = [0xC3, 0x28]
        let cases: [(BinaryFrame.Field, ByteBuffer)] = [
            (.joinRef, bytes([0x03, 0x02, 0x00, 0x01, 0x01, 0x00, 0x01], invalid, utf8("t"), utf8("e"))),
            (.ref, bytes([0x03, 0x00, 0x02, 0x01, 0x01, 0x00, 0x01], invalid, utf8("t"), utf8("e"))),
            (.topic, bytes([0x03, 0x00, 0x00, 0x02, 0x01, 0x00, 0x01], invalid, utf8("e"))),
            (.event, bytes([0x00, 0x00, 0x00, 0x01, 0x02], utf8("t"), invalid)),
        ]
        for (field, frame) in cases {
            #expect(throws: BinaryFrameError.invalidUTF8(field)) { try BinaryFrame(decoding: frame, sentBy: .client) }
        }
    }

    @Test(arguments: [#"{"a":"#, "[1,2]", "42", #""id""#, "\u{FF}"])
    func rejectsMetadataThatIsNotAJSONObject(metadata: String) {
        let frame = bytes([0x03, 0x00, 0x00, 0x01, 0x01, UInt8(metadata.utf8.count), 0x01], utf8("t"), utf8("e"), utf8(metadata))
        #expect(throws: BinaryFrameError.invalidMetadata) { try BinaryFrame(decoding: frame, sentBy: .client) }
    }

    // MARK: Encoding limits

    @Test func acceptsHeaderStringsOf255BytesAndRejects256() throws {
        let longest = String(repeating: "a", count: 255)
        let frame = BinaryFrame.userBroadcast(topic: longest, event: "e", metadata: nil, encoding: .binary, payload: ByteBuffer())
        #expect(try encoded(frame).count == 5 + 255 + 1)

        let tooLong = String(repeating: "é", count: 128)  // 256 UTF-8 bytes in 128 characters
        var buffer = ByteBuffer(string: "kept")
        #expect(throws: BinaryFrameError.fieldTooLong(.topic, byteCount: 256)) {
            try BinaryFrame.userBroadcast(topic: tooLong, event: "e", metadata: nil, encoding: .json, payload: ByteBuffer()).encode(into: &buffer)
        }
        #expect(buffer == ByteBuffer(string: "kept"))
    }

    @Test func rejectsOversizedMetadataAndEvents() {
        let bigMetadata: JSONObject = ["id": .string(String(repeating: "x", count: 250))]
        #expect(throws: BinaryFrameError.fieldTooLong(.metadata, byteCount: 259)) {
            _ = try encoded(.userBroadcast(topic: "t", event: "e", metadata: bigMetadata, encoding: .json, payload: ByteBuffer()))
        }
        #expect(throws: BinaryFrameError.fieldTooLong(.event, byteCount: 300)) {
            _ = try encoded(.push(joinRef: nil, ref: nil, topic: "t", event: String(repeating: "e", count: 300), payload: ByteBuffer()))
        }
    }

    // MARK: Round trips

    static let roundTripFrames: [(BinaryFrame, BinaryFrame.Sender)] = [
        (.push(joinRef: "1", ref: "2", topic: "realtime:room1", event: "broadcast", payload: ByteBuffer(string: #"{"a":1}"#)), .client),
        (.push(joinRef: nil, ref: nil, topic: "realtime:é", event: "ev", payload: ByteBuffer()), .client),
        (
            .userBroadcastPush(
                joinRef: "12",
                ref: "34",
                topic: "realtime:room1",
                event: "cursor",
                metadata: ["trace": "x", "n": 1],
                encoding: .json,
                payload: ByteBuffer(string: #"{"x":1}"#)
            ), .client
        ),
        (
            .userBroadcastPush(
                joinRef: nil,
                ref: "5",
                topic: "realtime:bin",
                event: "blob",
                metadata: [:],
                encoding: .binary,
                payload: ByteBuffer(bytes: [0, 1, 2, 0xFF])
            ), .client
        ),
        (
            .userBroadcast(topic: "realtime:room1", event: "msg", metadata: nil, encoding: .json, payload: ByteBuffer(string: #"{"text":"hi"}"#)),
            .server
        ),
        (
            .userBroadcast(
                topic: "realtime:room1",
                event: "msg",
                metadata: ["id": "u", "replayed": true],
                encoding: .binary,
                payload: ByteBuffer(bytes: [0xDE, 0xAD])
            ), .server
        ),
    ]

    @Test(arguments: roundTripFrames)
    func roundTrips(frame: BinaryFrame, sender: BinaryFrame.Sender) throws {
        var buffer = ByteBuffer()
        try frame.encode(into: &buffer)
        #expect(try BinaryFrame(decoding: buffer, sentBy: sender) == frame)
    }

    @Test func everyStrictPrefixOfAValidFrameIsRejectedOrShortensOnlyThePayload() throws {
        for (frame, sender) in Self.roundTripFrames {
            var buffer = ByteBuffer()
            try frame.encode(into: &buffer)
            let payloadSize = payloadOf(frame).readableBytes
            for length in 0..<buffer.readableBytes {
                let prefix = buffer.getSlice(at: 0, length: length) ?? ByteBuffer()
                let result = Result { try BinaryFrame(decoding: prefix, sentBy: sender) }
                if length >= buffer.readableBytes - payloadSize {
                    #expect(throws: Never.self) { try result.get() }
                } else {
                    #expect(throws: BinaryFrameError.self) { try result.get() }
                }
            }
        }
    }

    private func payloadOf(_ frame: BinaryFrame) -> ByteBuffer {
        switch frame {
        case .push(_, _, _, _, let payload), .userBroadcastPush(_, _, _, _, _, _, let payload), .userBroadcast(_, _, _, _, let payload):
            payload
        }
    }

    // MARK: Robustness

    /// 100k random, mutated and truncated frames: decoding must only ever return or throw.
    @Test func survivesRandomInput() throws {
        var random = SplitMixRandom(seed: 0x4845_5241_4C44)
        var valid: [ByteBuffer] = []
        for (frame, _) in Self.roundTripFrames {
            var buffer = ByteBuffer()
            try frame.encode(into: &buffer)
            valid.append(buffer)
        }
        var decodedCount = 0
        for iteration in 0..<100_000 {
            var frame: [UInt8]
            switch iteration % 3 {
            case 0:
                // Pure noise, biased towards the accepted kinds so headers get parsed.
                let count = Int.random(in: 0...40, using: &random)
                frame = (0..<count).map { _ in UInt8.random(in: 0...255, using: &random) }
                if !frame.isEmpty, Bool.random(using: &random) { frame[0] = [0, 3, 4].randomElement(using: &random) ?? 0 }
            case 1:
                // A valid frame with a few bytes flipped.
                frame = Array(valid[iteration % valid.count].readableBytesView)
                for _ in 0..<Int.random(in: 1...3, using: &random) {
                    frame[Int.random(in: 0..<frame.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            default:
                // A valid frame cut short or extended with noise.
                frame = Array(valid[iteration % valid.count].readableBytesView)
                frame = Array(frame.prefix(Int.random(in: 0...frame.count, using: &random)))
                if Bool.random(using: &random) { frame += (0..<5).map { _ in UInt8.random(in: 0...255, using: &random) } }
            }
            for sender in [BinaryFrame.Sender.client, .server] {
                if (try? BinaryFrame(decoding: ByteBuffer(bytes: frame), sentBy: sender)) != nil { decodedCount += 1 }
            }
        }
        #expect(decodedCount > 0)
    }
}
