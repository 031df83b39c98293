/// A filter text that is not `column=[not.]op.value[,…]`; `message` is upstream's exact system-message text.
public struct FilterSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// E.g. ``Error parsing `filter` params: ["like", "hey"]``.
    public var message: String

    public var description: String { message }

    static func parsing(_ reason: String) -> FilterSyntaxError {
        FilterSyntaxError(message: "Error parsing `filter` params: \(reason)")
    }

    /// The parts a segment was split into, rendered as Elixir's `inspect/1` shows a list of strings.
    static func parts(_ parts: [String]) -> FilterSyntaxError {
        parsing(ElixirInspect.inspect(.list(parts.map { .string($0) })))
    }
}

/// The syntax phase of the `postgres_changes` filter grammar (reference section 3.2, "Current"): a port of
/// upstream's `parse_filters` in `subscriptions.ex`, byte for byte where it matters (splitting, quotes,
/// error texts). Nothing here knows about the table; see `BoundFilter` for that.
public enum FilterParser {
    /// Upstream's limit on the number of values of an `in` list (checked when binding).
    public static let maximumInValues = 100

    /// Splits `text` into AND-ed conditions. An empty or blank text is no condition at all.
    public static func parse(_ text: String) throws(FilterSyntaxError) -> [FilterCondition] {
        let trimmed = trimmingElixirWhitespace(text)
        if trimmed.isEmpty { return [] }
        var conditions: [FilterCondition] = []
        for segment in splitTopLevel(Array(trimmed.utf8)) {
            conditions.append(try parseSegment(segment))
        }
        return conditions
    }

    /// Splits on commas outside double quotes and parentheses. A quote opens a quoted run only right after
    /// `.`, `(` or `,` (so `5" tall` stays literal); inside it a backslash protects the next byte.
    static func splitTopLevel(_ bytes: [UInt8]) -> [String] {
        var segments: [String] = []
        var start = 0
        var depth = 0
        var quoted = false
        var previous: UInt8 = 0
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if quoted {
                if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                    index += 1
                    previous = bytes[index]
                } else {
                    if byte == UInt8(ascii: "\"") { quoted = false }
                    previous = byte
                }
                index += 1
                continue
            }
            switch byte {
            case UInt8(ascii: "\"") where previous == UInt8(ascii: ".") || previous == UInt8(ascii: "(") || previous == UInt8(ascii: ","):
                quoted = true
                previous = byte
            case UInt8(ascii: "("):
                depth += 1
                previous = byte
            case UInt8(ascii: ")"):
                depth = max(0, depth - 1)
                previous = byte
            case UInt8(ascii: ",") where depth == 0:
                segments.append(String(decoding: bytes[start..<index], as: UTF8.self))
                start = index + 1
                previous = 0
            default:
                previous = byte
            }
            index += 1
        }
        segments.append(String(decoding: bytes[start...], as: UTF8.self))
        return segments
    }

    static func parseSegment(_ segment: String) throws(FilterSyntaxError) -> FilterCondition {
        let trimmed = trimmingElixirWhitespace(segment)
        if trimmed.isEmpty {
            throw .parsing("filter must not contain empty segments (check for extra commas)")
        }
        guard let (column, rest) = splitOnce(trimmed, at: UInt8(ascii: "=")) else { throw .parts([trimmed]) }
        // Byte-wise like upstream: `hasPrefix` on `String` would compare grapheme clusters.
        let negated = rest.utf8.starts(with: "not.".utf8)
        let operatorAndValue = negated ? String(Substring(rest.utf8.dropFirst(4))) : rest
        guard let (name, value) = splitOnce(operatorAndValue, at: UInt8(ascii: ".")) else { throw .parts([operatorAndValue]) }
        guard let op = FilterOperator(rawValue: name) else { throw .parts([name, value]) }
        if op == .in {
            guard value.utf8.count >= 2, value.utf8.first == UInt8(ascii: "("), value.utf8.last == UInt8(ascii: ")") else {
                throw .parsing("`in` filter value must be wrapped by parentheses")
            }
            let inner = value.utf8.dropFirst().dropLast()
            return FilterCondition(column: column, op: op, value: "{" + String(decoding: inner, as: UTF8.self) + "}", negated: negated)
        }
        return FilterCondition(column: column, op: op, value: unquoted(value), negated: negated)
    }

    /// PostgREST quoting: `"…"` spanning the whole value loses its quotes and backslash escapes; anything
    /// else (no closing quote, text after it) is kept literally, quotes included.
    static func unquoted(_ value: String) -> String {
        let bytes = Array(value.utf8)
        guard bytes.first == UInt8(ascii: "\"") else { return value }
        var result: [UInt8] = []
        var index = 1
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                return index == bytes.count - 1 ? String(decoding: result, as: UTF8.self) : value
            }
            if byte == UInt8(ascii: "\\"), index + 1 < bytes.count {
                index += 1
            }
            result.append(bytes[index])
            index += 1
        }
        return value
    }

    /// Elixir's `String.split(text, separator, parts: 2)`: nil when the separator is absent.
    static func splitOnce(_ text: String, at separator: UInt8) -> (String, String)? {
        guard let index = text.utf8.firstIndex(of: separator) else { return nil }
        return (String(text[..<index]), String(text[text.utf8.index(after: index)...]))
    }

    /// Elixir's `String.trim/1`: strips Unicode `White_Space` code points at both ends.
    static func trimmingElixirWhitespace(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }
}
