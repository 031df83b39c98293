import Foundation
import NIOCore
import Testing

@testable import herald_bench

/// The pure parts of the S1-S3 scenarios and the peers: rooms, per-target delivery counts and URLs, the floor's
/// wire, ratios.
@Suite struct PeerAndScenarioTests {
    @Test func echoGroupsPutEveryMemberInTwoRooms() {
        let group = SocketGroup(name: "s1u10", members: 10, roomSize: 6, presence: false, echo: true)
        #expect(group.rooms(of: 7) == [
            Room(topic: "realtime:s1u10-1", members: 4, selfDelivery: false),
            Room(topic: "realtime:s1u10-echo-7", members: 1, selfDelivery: true),
        ])
        let plain = SocketGroup(name: "s3c5", members: 5, roomSize: 1, presence: false)
        #expect(plain.rooms(of: 3) == [Room(topic: "realtime:s3c5-3", members: 1, selfDelivery: true)])
    }

    @Test func targetsCountDeliveriesAndNameRoomsTheirOwnWay() {
        let group = Room(topic: "realtime:g-0", members: 6, selfDelivery: false)
        let echo = Room(topic: "realtime:g-echo-3", members: 1, selfDelivery: true)
        #expect(Target.herald.deliveries(of: group) == 5)
        #expect(Target.floor.deliveries(of: group) == 5)
        #expect(Target.nchan.deliveries(of: group) == 6)
        #expect(Target.allCases.allSatisfy { $0.deliveries(of: echo) == 1 })
        #expect(Target.nchan.upgradePath(rooms: [group, echo], token: "x") == "/sub/g-0,g-echo-3")
        #expect(Target.floor.upgradePath(rooms: [group, echo], token: "x") == "/floor/realtime:g-0,+realtime:g-echo-3")
        #expect(Target.herald.upgradePath(rooms: [group], token: "abc") == "/socket/websocket?apikey=abc&vsn=2.0.0")
    }

    @Test func computesTheWebSocketAccept() {
        // RFC 6455 section 1.3's example, and SHA-1 of the empty string (FIPS 180 test vector).
        #expect(SHA1.webSocketAccept(key: "dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        #expect(SHA1.hash([]).map { String(format: "%02x", $0) }.joined() == "da39a3ee5e6b4b0d3255bfef95601890afd80709")
        #expect(SHA1.base64(Array("ab".utf8)) == "YWI=")
    }

    @Test func floorReadsRoomsFromTheURL() {
        let head = "GET /floor/realtime:a-1,+realtime:a-echo-2 HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: abc==\r\nUpgrade: websocket"
        #expect(FloorWire.request(head: head) == FloorWire.Request(
            rooms: [.init(topic: "realtime:a-1", includesSender: false), .init(topic: "realtime:a-echo-2", includesSender: true)],
            key: "abc=="
        ))
        #expect(FloorWire.request(head: "GET /socket HTTP/1.1\r\nSec-WebSocket-Key: a") == nil)
        #expect(FloorWire.request(head: "GET /floor/a HTTP/1.1\r\nHost: x") == nil)
    }

    @Test func floorUnmasksAndReframesAPushAsHeraldWould() throws {
        let push = ClientMessages.textBroadcast(topic: "realtime:r-0", joinRef: 3, payload: #"{"bt":5}"#)
        var client = ByteBuffer()
        WebSocketWire.writeClientFrameHeader(.text, length: push.utf8.count, into: &client)
        // A non-zero key this time: the header ends with the key, which writeClientFrameHeader wrote as zero.
        let key: [UInt8] = [1, 2, 3, 4]
        client.moveWriterIndex(to: client.writerIndex - 4)
        client.writeBytes(key)
        client.writeBytes(push.utf8.enumerated().map { $0.element ^ key[$0.offset % 4] })
        let frame = try #require(client.withUnsafeMutableReadableBytes { bytes -> String? in
            guard let frame = WebSocketWire.serverFrame(in: UnsafeRawBufferPointer(bytes), at: 0) else { return nil }
            FloorWire.unmask(bytes, frameStart: 0, payload: frame.payload)
            let payload = UnsafeRawBufferPointer(rebasing: bytes[frame.payload])
            guard let head = FrameScanner.v2Head(payload) else { return nil }
            var out = FloorWire.broadcastFrame(push: payload, topicStart: head.topic.lowerBound, allocator: ByteBufferAllocator())
            let bytes = out.readBytes(length: out.readableBytes) ?? []
            return bytes.first == 0x81 ? String(decoding: bytes.dropFirst(2), as: UTF8.self) : nil
        })
        #expect(frame == #"[null,null,"realtime:r-0","broadcast",{"type":"broadcast","event":"b","payload":{"bt":5}}]"#)
    }

    @Test func ratiosAreHeraldOverPeerForSharedFigures() throws {
        let ratios = Comparison<S3Scenario.Summary>.ratios(["a": 3, "b": 1, "c": 2], ["a": 2, "c": 0, "d": 1])
        #expect(ratios == ["a": 1.5])
        #expect(try parseCounts("1000, 4000") == [1000, 4000])
        #expect(throws: (any Error).self) { try parseCounts("10.5") }
    }

    @Test func s1AndS2PlanTheirPhases() {
        let s1 = S1Scenario(users: [12], groupSize: 6, messagesPerRoom: 2, stepSeconds: 1, payloadBytes: 100, connectConcurrency: 8)
        #expect(s1.load(users: 12).messagesPerSecond == 48)
        #expect(s1.phases.map(\.kind) == ["connect", "idle", "broadcast", "disconnect", "idle"])
        let s2 = S2Scenario(
            rooms: SocketGroup(name: "r", members: 200, roomSize: 100, presence: false),
            rates: [10, 20],
            p99LimitMs: 100,
            stepSeconds: 1,
            largeRoom: SocketGroup(name: "big", members: 300, roomSize: 300, presence: false),
            bursts: 2,
            payloadBytes: 100,
            connectConcurrency: 8
        )
        #expect(s2.phases.map(\.kind) == ["connect", "idle", "broadcast", "broadcast", "disconnect", "idle", "connect", "idle", "burst", "burst", "disconnect"])
    }
}
