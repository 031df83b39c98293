import Foundation

/// Helpers for PostgreSQL connection URLs (`postgres://user:password@host:port/database?...`) and
/// key/value connection strings (`host=... password=...`).
public enum DatabaseURL {
    /// The URL with its password replaced by `***`, fit for logs and error messages.
    public static func redacted(_ url: String) -> String {
        var result = url
        for range in passwordRanges(in: url).reversed() {
            result.replaceSubrange(range, with: "***")
        }
        return result
    }

    /// `text` with every occurrence of the URL's password (raw or percent-decoded) replaced by `***`.
    /// For messages from libpq, which may echo parts of the URL.
    static func redact(_ text: String, secretsOf url: String) -> String {
        let raw = passwordRanges(in: url).map { String(url[$0]) }
        let spellings = Set(raw + raw.compactMap { $0.removingPercentEncoding }).filter { !$0.isEmpty }
        // Longest first, so that a password containing another one is replaced whole.
        return spellings.sorted { $0.count > $1.count }.reduce(text) { text, secret in
            text.replacingOccurrences(of: secret, with: "***")
        }
    }

    /// Where passwords sit in the URL, in order: the user-info part of a URI and `password=` parameters.
    private static func passwordRanges(in url: String) -> [Range<String.Index>] {
        var ranges: [Range<String.Index>] = []
        if let schemeEnd = url.range(of: "://") {
            let authority = url[schemeEnd.upperBound...].prefix { $0 != "/" && $0 != "?" }
            if let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") {
                ranges.append(authority.index(after: colon)..<at)
            }
        }
        var searchStart = url.startIndex
        while let match = url.range(of: "password=", options: .caseInsensitive, range: searchStart..<url.endIndex) {
            var value = url[match.upperBound...].prefix { $0 != "&" && !$0.isWhitespace }
            if value.hasPrefix("'") && value.hasSuffix("'") && value.count >= 2 { value = value.dropFirst().dropLast() }
            ranges.append(value.startIndex..<value.endIndex)
            searchStart = match.upperBound
        }
        return ranges.sorted { $0.lowerBound < $1.lowerBound }
    }
}
