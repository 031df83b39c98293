import Foundation
import NIOCore
import Testing

@testable import herald_bench

/// The harness's pure parts: frame reading, pacing, /proc parsing, histogram merging, plans.
@Suite struct HarnessTests {
    func withBytes<T>(_ text: String, _ body: (UnsafeRawBufferPointer) -> T) -> T {
        Array(text.utf8).withUnsafeBytes(body)
    }

    @Test func readsTheHeadOfV2Frames() {
        withBytes(#"["j3","t4","realtime:room-1","phx_reply",{"status":"ok","response":{}}]"#) { bytes in
            let head = FrameScanner.v2Head(bytes)
            #expect(head?.event == .reply)
            #expect(head.flatMap(\.ref).map { String(decoding: bytes[$0], as: UTF8.self) } == "t4")
            #expect(head.map { FrameScanner.replyIsOK(bytes, payloadStart: $0.payloadStart) } == true)
        }
        withBytes(#"[null,null,"realtime:room-1","presence_diff",{"joins":{},"leaves":{}}]"#) { bytes in
            #expect(FrameScanner.v2Head(bytes)?.event == .presenceDiff)
            #expect(FrameScanner.v2Head(bytes)?.ref == nil)
        }
        withBytes(#"["1","2","realtime:a","phx_reply",{"status":"error","response":{}}]"#) { bytes in
            #expect(FrameScanner.v2Head(bytes).map { FrameScanner.replyIsOK(bytes, payloadStart: $0.payloadStart) } == false)
        }
        withBytes(#"{"topic":"phoenix"}"#) { #expect(FrameScanner.v2Head($0) == nil) }
        withBytes(#"["a\"b",null,"t","e",{}]"#) { #expect(FrameScanner.v2Head($0) == nil) }
    }

    @Test func readsTrackedMetasOfTheJoinsOnly() {
        let diff = #"[null,null,"realtime:room-0","presence_diff",{"joins":{"room5":{"metas":[{"phx_ref":"F-abc","phx_ref_prev":"F-abb","t":1200,"m":5}]},"room7":{"metas":[{"phx_ref":"F-x","t":1300,"m":7}]}},"leaves":{"room5":{"metas":[{"phx_ref":"F-abb","t":900,"m":5}]}}}]"#
        let metas: [[UInt64]] = withBytes(diff) { bytes in
            guard let head = FrameScanner.v2Head(bytes) else { return [] }
            var metas: [[UInt64]] = []
            FrameScanner.forEachTrackedMeta(in: bytes, range: FrameScanner.joinsSection(of: bytes, payloadStart: head.payloadStart)) {
                metas.append([$0, $1])
            }
            return metas
        }
        #expect(metas == [[1200, 5], [1300, 7]])
    }

    @Test func findsIntegersAfterMarkers() {
        let members: [UInt64] = withBytes(#"{"a":{"metas":[{"phx_ref":"x","t":1,"m":10}]},"b":{"metas":[{"phx_ref":"y","t":2,"m":11}]}}"#) { bytes in
            var found: [UInt64] = []
            FrameScanner.forEachInteger(after: Markers.member, in: bytes, range: 0..<bytes.count) { found.append($0) }
            return found
        }
        #expect(members == [10, 11])
        let sentAt = withBytes(ClientMessages.broadcastPayload(sentAt: 987_654_321, size: 200)) { bytes in
            FrameScanner.firstIndex(of: Markers.broadcastSentAt, in: bytes, range: 0..<bytes.count)
                .flatMap { FrameScanner.integer(in: bytes, at: $0 + Markers.broadcastSentAt.count)?.value }
        }
        #expect(sentAt == 987_654_321)
        #expect(ClientMessages.broadcastPayload(sentAt: 1, size: 200).utf8.count == 200)
    }

    @Test func encodesClientFramesAndReadsServerFrames() {
        var buffer = ByteBuffer()
        WebSocketWire.writeClientFrame(.text, text: "hi", into: &buffer)
        #expect(Array(buffer.readableBytesView) == [0x81, 0x82, 0, 0, 0, 0, 0x68, 0x69])
        var long = ByteBuffer()
        WebSocketWire.writeClientFrame(.binary, payload: [UInt8](repeating: 7, count: 300), into: &long)
        #expect(Array(long.readableBytesView.prefix(8)) == [0x82, 0xFE, 0x01, 0x2C, 0, 0, 0, 0])

        // Two server frames, the second cut short.
        let frames: [UInt8] = [0x81, 0x03] + Array("abc".utf8) + [0x82, 0x7E, 0x01, 0x00] + [UInt8](repeating: 1, count: 10)
        frames.withUnsafeBytes { bytes in
            let first = WebSocketWire.serverFrame(in: bytes, at: 0)
            #expect(first?.opcode == 1 && first?.payload == 2..<5 && first?.end == 5)
            #expect(WebSocketWire.serverFrame(in: bytes, at: 5) == nil)
        }
    }

    @Test func readsTheUpgradeAnswer() {
        var partial = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
        #expect(WebSocketWire.readUpgradeAnswer(&partial) == .incomplete)
        var switched = ByteBuffer(string: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n")
        switched.writeBytes([0x81, 0x00])  // a first frame right behind the head
        #expect(WebSocketWire.readUpgradeAnswer(&switched) == .switched)
        #expect(switched.readableBytes == 2)
        var refused = ByteBuffer(string: "HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\n\r\n")
        #expect(WebSocketWire.readUpgradeAnswer(&refused) == .refused(status: 401))
    }

    @Test func pacesOpenLoopWithBoundedBursts() {
        var pacer = Pacer(start: 1_000_000_000, rate: 100, maxBurst: 5)
        #expect(pacer.due(at: 500_000_000) == 0)
        #expect(pacer.due(at: 1_020_000_000) == 2)
        #expect(pacer.due(at: 1_020_000_000) == 0)
        // A generator that stalled for a second catches up at most `maxBurst` at a time.
        #expect(pacer.due(at: 2_020_000_000) == 5)
        #expect(pacer.shortfall(at: 2_020_000_000) == 95)
    }

    @Test func parsesProcFiles() {
        let stat = "4242 (herald (serve)) S 1 4242 4242 0 -1 4194560 1500 0 0 0 250 75 0 0 20 0 3 0 1000 100000 2000 18446744073709551615"
        #expect(ProcessSample.cpuTicks(statLine: stat) == 325)
        #expect(ProcessSample.residentKilobytes(status: "Name:\therald\nVmPeak:\t  900 kB\nVmRSS:\t   12345 kB\n") == 12345)
        #expect(ProcessSample.residentKilobytes(status: "Name:\tx\n") == nil)
        #expect(ProcessSample.runQueueWaitNanoseconds(schedstat: "416675272 202654114 97\n") == 202_654_114)
        let pressure = "some avg10=42.42 avg60=81.88 avg300=82.91 total=3760072309\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
        #expect(CPUPressure.stalledMicroseconds(pressure: pressure) == 3_760_072_309)
        let usage = ProcessUsage(cpuMicroseconds: 500_000, seconds: 2)
        #expect(usage.cpuPercent == 25)
    }

    @Test func histogramsSurviveTheTripBetweenProcesses() throws {
        var first = LatencyHistogram()
        for microseconds: UInt64 in [100, 200, 300, 5_000] { first.record(from: 0, to: microseconds * 1_000) }
        var second = LatencyHistogram()
        second.record(from: 0, to: 40_000_000)
        var report = PhaseReport()
        report.latency = first
        report.deliveries = 4
        var other = PhaseReport()
        other.latency = second
        other.deliveries = 1
        other.firstSendAt = 7
        let decoded = try JSONDecoder().decode(PhaseReport.self, from: JSONEncoder().encode(other))
        let merged = PhaseReport.merged([report, decoded])
        #expect(merged.deliveries == 5)
        #expect(merged.firstSendAt == 7)
        let summary = try #require(merged.latency.summary)
        #expect(summary.samples == 5)
        #expect(summary.p50 == 0.3)
        #expect(abs(summary.max - 40) < 0.05)
    }

    @Test func plansSpreadMembersAndRates() throws {
        let plan = WorkerPlan(worker: 1, workers: 3, host: "127.0.0.1", port: 1, token: "", sourceAddress: "127.0.0.3", phases: [])
        let group = SocketGroup(name: "room", members: 10, roomSize: 4, presence: true)
        #expect(plan.localMembers(of: group) == [1, 4, 7])
        #expect(group.rooms == 3)
        #expect(group.topic(of: 7) == "realtime:room-1")
        #expect(WorkerPlan.share(of: 100, local: 3, total: 10) == 30)
        let step = BroadcastStep(seconds: 1, messagesPerSecond: 1, publishersPerRoom: 2, payloadBytes: 10, binary: false)
        #expect((0..<10).filter { step.publishes($0, roomSize: 4) } == [0, 1, 4, 5, 8, 9])
        #expect(try parseRates("50, 100,200") == [50, 100, 200])
        #expect(try parseRates("").isEmpty)
        #expect(throws: (any Error).self) { try parseRates("50,x") }
    }

    @Test func memberSetsCountDistinctMembers() {
        var set = MemberSet(count: 70)
        for member in [0, 69, 69, 70, -1] { set.insert(member) }
        #expect(set.size == 2)
        for member in 0..<70 { set.insert(member) }
        #expect(set.isComplete)
    }
}
