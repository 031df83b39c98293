import HeraldCore

/// The decision taken on a WebSocket upgrade request before the upgrade (reference section 1.2): refusals are
/// answered as plain HTTP responses with upstream's status codes and `{"error": ...}` bodies.
enum Admission: Equatable {
    case accept(version: SerializerVersion, token: String, claims: TokenClaims)
    case refuse(status: Int, error: String?)

    static let socketPaths: Set<String> = ["/socket/websocket", "/realtime/v1/websocket"]

    /// `uri` is the request target (path and query); `apiKeyHeader` the `x-api-key` header, which wins over the
    /// `apikey` query parameter.
    static func evaluate(uri: String, apiKeyHeader: String?, verifier: TokenVerifier, now: Int64, roomForConnection: Bool = true) -> Admission {
        let (path, query) = splitURI(uri)
        guard socketPaths.contains(path) else { return .refuse(status: 404, error: nil) }
        guard let version = SerializerVersion(vsn: query["vsn"]) else { return .refuse(status: 403, error: nil) }
        guard let token = apiKeyHeader ?? query["apikey"], !token.isEmpty else {
            return .refuse(status: 401, error: "API key is missing")
        }
        switch verifier.verify(token, now: now) {
        case .valid(let claims):
            guard roomForConnection else { return .refuse(status: 429, error: "Too many connected users") }
            return .accept(version: version, token: token, claims: claims)
        case .expired: return .refuse(status: 401, error: "Token has expired")
        case .invalid(_, let message): return .refuse(status: 401, error: message)
        }
    }

    /// Splits `/path?a=1&b=%20` into the path and its decoded query parameters (first occurrence wins).
    static func splitURI(_ uri: String) -> (path: String, query: [String: String]) {
        guard let mark = uri.firstIndex(of: "?") else { return (uri, [:]) }
        var query: [String: String] = [:]
        for pair in uri[uri.index(after: mark)...].split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = percentDecode(parts[0])
            if query[name] == nil { query[name] = parts.count > 1 ? percentDecode(parts[1]) : "" }
        }
        return (String(uri[..<mark]), query)
    }

    static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) {
                    bytes.append(high << 4 | low)
                }
            default: bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
