import Foundation

/// A WebSocket client that upgrades, sends some frames and then never reads: a consumer that stopped reading.
/// Plain blocking POSIX calls with a tiny receive buffer, so the server's backlog for it grows at once; call
/// from `offloaded`.
public final class StalledWebSocket: @unchecked Sendable {
    private let descriptor: Int32

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    public init(port: Int, target: String) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw StalledWebSocket.Failure("socket() failed: \(errno)") }
        var small: Int32 = 4096
        setsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw StalledWebSocket.Failure("connect() failed: \(errno)")
        }
        let request = "GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        try write(Array(request.utf8))
        // Read exactly the response head (up to the blank line), nothing after it.
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.ends(with: [13, 10, 13, 10]) {
            guard read(descriptor, &byte, 1) == 1 else { throw StalledWebSocket.Failure("the upgrade response ended early") }
            head.append(byte)
        }
        guard String(decoding: head, as: UTF8.self).hasPrefix("HTTP/1.1 101") else {
            throw StalledWebSocket.Failure("upgrade refused: \(String(decoding: head, as: UTF8.self))")
        }
    }

    deinit { close(descriptor) }

    /// Sends one masked text frame (mask key 0, so the payload goes as is).
    public func sendText(_ text: String) throws {
        let payload = Array(text.utf8)
        var frame: [UInt8] = [0x81]
        switch payload.count {
        case ..<126: frame.append(0x80 | UInt8(payload.count))
        default: frame += [0x80 | 126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
        }
        frame += [0, 0, 0, 0] + payload
        try write(frame)
    }

    /// Reads until the server ends the connection (or `timeout` passes between two reads); returns how many bytes
    /// arrived and whether the stream ended.
    public func drain(timeout: TimeInterval) -> (bytes: Int, ended: Bool) {
        var limit = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 65536)
        var total = 0
        while true {
            let count = read(descriptor, &buffer, buffer.count)
            if count > 0 {
                total += count
                continue
            }
            // 0: orderly end; ECONNRESET: the server dropped the connection; EAGAIN: timed out.
            return (total, count == 0 || errno == ECONNRESET)
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { throw StalledWebSocket.Failure("write() failed: \(errno)") }
            offset += written
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool { count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix }
}
