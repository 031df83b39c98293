import NIOCore
import NIOPosix
import Synchronization

/// A raw WebSocket client for tests: it shows the server's HTTP answer to the upgrade exactly, sends any frame
/// (including malformed ones) and hands back every frame the server writes, unparsed.
public final class TestWebSocket: Sendable {
    public struct Frame: Sendable, Equatable, CustomStringConvertible {
        public var opcode: UInt8
        public var payload: [UInt8]
        public var text: String { String(decoding: payload, as: UTF8.self) }
        public var isText: Bool { opcode == 0x1 }
        public var isBinary: Bool { opcode == 0x2 }
        public var isClose: Bool { opcode == 0x8 }
        /// The close code of a close frame.
        public var closeCode: Int? { isClose && payload.count >= 2 ? Int(payload[0]) << 8 | Int(payload[1]) : nil }
        public var description: String { isBinary ? "binary(\(payload))" : "op\(opcode): \(text)" }
    }

    /// The server answered the upgrade request with something other than 101.
    public struct UpgradeRefused: Error, CustomStringConvertible {
        public var status: Int
        public var body: String
        public var description: String { "HTTP \(status): \(body)" }
    }

    public struct Timeout: Error, CustomStringConvertible {
        public var description: String { "no frame within the timeout" }
    }

    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let inbox: Inbox
    private let reader: Task<Void, Never>

    private init(channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>, inbox: Inbox, reader: Task<Void, Never>) {
        self.channel = channel
        self.inbox = inbox
        self.reader = reader
    }

    deinit { reader.cancel() }

    /// Opens a socket to `127.0.0.1:port` and performs the upgrade of `target` (path and query).
    public static func connect(port: Int, target: String, headers: [(String, String)] = [], host: String = "127.0.0.1") async throws -> TestWebSocket {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture { try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel) }
            }
        var request = "GET \(target) HTTP/1.1\r\nHost: \(host):\(port)\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        request += "\r\n"
        try await channel.channel.writeAndFlush(ByteBuffer(string: request))

        let inbox = Inbox()
        let (upgrade, upgradeContinuation) = AsyncStream.makeStream(of: Result<Void, UpgradeRefused>.self)
        let reader = Task {
            var parser = ResponseParser()
            // executeThenClose finishes the channel's writer and closes it when reading ends (server close,
            // `close()`, or cancellation when the test drops the socket).
            try? await channel.executeThenClose { inbound, _ in
                for try await chunk in inbound {
                    parser.buffer.append(contentsOf: chunk.readableBytesView)
                    if !parser.upgraded {
                        guard let (status, body) = parser.parseHead() else { continue }
                        if status != 101 {
                            // Collect the rest of a refusal's body until the server closes.
                            if parser.isCompleteBody(body) {
                                upgradeContinuation.yield(.failure(UpgradeRefused(status: status, body: parser.bodyText)))
                                break
                            }
                            parser.upgraded = false
                            parser.pendingStatus = status
                            continue
                        }
                        upgradeContinuation.yield(.success(()))
                    }
                    while let frame = parser.nextFrame() { inbox.put(frame) }
                }
            }
            if let status = parser.pendingStatus {
                upgradeContinuation.yield(.failure(UpgradeRefused(status: status, body: parser.bodyText)))
            }
            upgradeContinuation.finish()
            inbox.finish()
        }
        var results = upgrade.makeAsyncIterator()
        switch await results.next() {
        case .success?:
            return TestWebSocket(channel: channel, inbox: inbox, reader: reader)
        case .failure(let refusal)?:
            throw refusal
        case nil:
            throw UpgradeRefused(status: 0, body: "connection closed before the upgrade completed")
        }
    }

    public func sendText(_ text: String) async throws { try await sendFrame(opcode: 0x1, payload: Array(text.utf8)) }

    public func sendBinary(_ bytes: [UInt8]) async throws { try await sendFrame(opcode: 0x2, payload: bytes) }

    /// Writes one masked frame, as clients must.
    public func sendFrame(opcode: UInt8, payload: [UInt8], fin: Bool = true) async throws {
        var out: [UInt8] = [(fin ? 0x80 : 0) | opcode]
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        switch payload.count {
        case 0..<126: out.append(0x80 | UInt8(payload.count))
        case 126..<65536: out.append(contentsOf: [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)])
        default:
            out.append(0x80 | 127)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8((payload.count >> shift) & 0xFF)) }
        }
        out.append(contentsOf: mask)
        for (i, byte) in payload.enumerated() { out.append(byte ^ mask[i & 3]) }
        try await channel.channel.writeAndFlush(ByteBuffer(bytes: out))
    }

    /// The next frame from the server (pings and pongs included), or `Timeout`.
    public func receive(timeout: Duration = .seconds(30)) async throws -> Frame {
        let inbox = self.inbox
        let ticket = inbox.nextTicket()
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            inbox.expire(ticket)
        }
        defer { timer.cancel() }
        guard let frame = await inbox.take(ticket) else { throw Timeout() }
        return frame
    }

    /// Receives frames until one satisfies `predicate`; the others are returned too, in order.
    public func receive(until predicate: (Frame) -> Bool, timeout: Duration = .seconds(30)) async throws -> [Frame] {
        var seen: [Frame] = []
        while true {
            let frame = try await receive(timeout: timeout)
            seen.append(frame)
            if predicate(frame) { return seen }
        }
    }

    /// Drops the TCP connection without a close frame, as a crashed client or a lost network would.
    public func abort() async {
        try? await channel.channel.close()
    }

    public func close() async {
        try? await sendFrame(opcode: 0x8, payload: [0x03, 0xE8])
        try? await channel.channel.close()
    }
}

/// Frames received and not yet taken, and the one receiver waiting for the next.
private final class Inbox: Sendable {
    private struct State {
        var frames: [TestWebSocket.Frame] = []
        var waiter: CheckedContinuation<TestWebSocket.Frame?, Never>?
        /// Which receive the waiter belongs to, so a late timer cannot wake a later receive.
        var waiterTicket = 0
        var tickets = 0
        var expired: Set<Int> = []
        var finished = false
    }

    private let state = Mutex(State())

    func put(_ frame: TestWebSocket.Frame) {
        let waiter = state.withLock { state -> CheckedContinuation<TestWebSocket.Frame?, Never>? in
            guard let waiter = state.waiter else {
                state.frames.append(frame)
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: frame)
    }

    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    func nextTicket() -> Int {
        state.withLock { state in
            state.tickets += 1
            return state.tickets
        }
    }

    /// The receive holding `ticket` timed out: wake it with nothing.
    func expire(_ ticket: Int) {
        let waiter = state.withLock { state -> CheckedContinuation<TestWebSocket.Frame?, Never>? in
            guard state.waiter != nil, state.waiterTicket == ticket else {
                state.expired.insert(ticket)
                return nil
            }
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    func take(_ ticket: Int) async -> TestWebSocket.Frame? {
        await withCheckedContinuation { continuation in
            let ready: TestWebSocket.Frame?? = state.withLock { state in
                if !state.frames.isEmpty { return .some(state.frames.removeFirst()) }
                if state.finished || state.expired.remove(ticket) != nil { return .some(nil) }
                state.waiter = continuation
                state.waiterTicket = ticket
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// Parses the HTTP response head and then unmasked server frames from a byte stream.
private struct ResponseParser {
    var buffer: [UInt8] = []
    var upgraded = false
    var pendingStatus: Int?
    private var headEnd = 0
    private var contentLength: Int?

    var bodyText: String { String(decoding: buffer[min(headEnd, buffer.count)...], as: UTF8.self) }

    mutating func parseHead() -> (status: Int, body: Int)? {
        guard let end = buffer.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        let statusLine = head.split(separator: "\r\n").first ?? ""
        let status = statusLine.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        for line in head.split(separator: "\r\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "content-length" {
                contentLength = Int(parts[1].filter { $0 != " " })
            }
        }
        headEnd = end.upperBound
        if status == 101 {
            buffer.removeFirst(end.upperBound)
            headEnd = 0
            upgraded = true
        }
        return (status, end.upperBound)
    }

    func isCompleteBody(_ bodyStart: Int) -> Bool {
        guard let contentLength else { return false }
        return buffer.count - bodyStart >= contentLength
    }

    mutating func nextFrame() -> TestWebSocket.Frame? {
        guard buffer.count >= 2 else { return nil }
        let opcode = buffer[0] & 0x0F
        var length = Int(buffer[1] & 0x7F)
        var offset = 2
        if length == 126 {
            guard buffer.count >= 4 else { return nil }
            length = Int(buffer[2]) << 8 | Int(buffer[3])
            offset = 4
        } else if length == 127 {
            guard buffer.count >= 10 else { return nil }
            length = (2..<10).reduce(0) { $0 << 8 | Int(buffer[$1]) }
            offset = 10
        }
        guard buffer.count >= offset + length else { return nil }
        let payload = Array(buffer[offset..<(offset + length)])
        buffer.removeFirst(offset + length)
        return TestWebSocket.Frame(opcode: opcode, payload: payload)
    }
}
