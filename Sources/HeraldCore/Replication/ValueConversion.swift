/// Turns a value's text output into the JSON `row_to_json` writes for it (PostgreSQL's `datum_to_json`), so
/// that the replication source and the trigger source produce the same records.
///
/// The text must come from a session with `DateStyle = ISO` (the replication connection sets it). Timestamps
/// with time zone are printed in that session's `TimeZone`, which Herald sets to UTC.
indirect enum ValueConversion: Sendable, Equatable {
    /// `t`/`f` → `true`/`false`.
    case bool
    /// Integers, floats, numeric: the text as a JSON number when it is one (`NaN`, `Infinity` stay strings).
    case number
    /// `2026-01-01 10:00:00` → `"2026-01-01T10:00:00"` (XML Schema style, as `row_to_json`).
    case timestamp
    /// `2026-01-01 10:00:00+00` → `"2026-01-01T10:00:00+00:00"`.
    case timestamptz
    /// json and jsonb: the document itself.
    case json
    /// Arrays (any dimensions, bounds dropped) of elements converted by their own type.
    case array(ValueConversion, delimiter: UInt8)
    /// Everything else (text, uuid, date, time, enums, bytea, intervals, ranges, composites…): the text itself.
    case string

    func json(_ text: String) -> JSONValue {
        switch self {
        case .bool:
            switch text {
            case "t": return .bool(true)
            case "f": return .bool(false)
            default: return .string(text)
            }
        case .number:
            return Self.isJSONNumber(text.utf8) ? .number(text) : .string(text)
        case .timestamp:
            return .string(Self.xmlSchemaTimestamp(text, hasZone: false))
        case .timestamptz:
            return .string(Self.xmlSchemaTimestamp(text, hasZone: true))
        case .json:
            return (try? JSONValue.parse(text)) ?? .string(text)
        case .array(let element, let delimiter):
            return Self.array(text, element: element, delimiter: delimiter) ?? .string(text)
        case .string:
            return .string(text)
        }
    }

    /// JSON's number grammar, which is what PostgreSQL checks before writing a number bare.
    static func isJSONNumber(_ text: String.UTF8View) -> Bool {
        var bytes = text[...]
        func digits() -> Int {
            let count = bytes.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.count
            bytes = bytes.dropFirst(count)
            return count
        }
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        if bytes.first == UInt8(ascii: "0") {
            bytes = bytes.dropFirst()
        } else if digits() == 0 {
            return false
        }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard digits() > 0 else { return false }
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return bytes.isEmpty
    }

    /// ISO `YYYY-MM-DD HH:MM:SS[.f][±HH[:MM[:SS]]][ BC]` → `YYYY-MM-DDTHH:MM:SS[.f][±HH:MM[:SS]][ BC]`;
    /// `infinity` and `-infinity` stay as they are.
    static func xmlSchemaTimestamp(_ text: String, hasZone: Bool) -> String {
        var bytes = Array(text.utf8)
        guard let separator = bytes.firstIndex(of: UInt8(ascii: " ")) else { return text }
        bytes[separator] = UInt8(ascii: "T")
        if hasZone,
            let sign = bytes[separator...].firstIndex(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") })
        {
            let zoneEnd = bytes[sign...].firstIndex(of: UInt8(ascii: " ")) ?? bytes.endIndex
            if !bytes[sign..<zoneEnd].contains(UInt8(ascii: ":")) {
                bytes.insert(contentsOf: ":00".utf8, at: zoneEnd)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `{1,2}` → `[1,2]`, `{{1,2},{3,4}}` → `[[1,2],[3,4]]`, `[0:1]={7,8}` → `[7,8]`; `nil` when the text
    /// cannot be read (a delimiter other than a comma, as `box` uses).
    static func array(_ text: String, element: ValueConversion, delimiter: UInt8) -> JSONValue? {
        guard delimiter == UInt8(ascii: ",") else { return nil }
        var literal = Substring(text)
        if literal.hasPrefix("["), let equals = literal.firstIndex(of: "=") {
            literal = literal[literal.index(after: equals)...]
        }
        guard let parsed = try? ArrayLiteral.parse(String(literal)) else { return nil }
        let values = parsed.elements.map { $0.map(element.json) ?? .null }
        return nest(values[...], dimensions: parsed.dimensions[...])
    }

    private static func nest(_ values: ArraySlice<JSONValue>, dimensions: ArraySlice<Int>) -> JSONValue {
        guard let count = dimensions.first, count > 0 else { return .array([]) }
        let inner = dimensions.dropFirst()
        guard !inner.isEmpty else { return .array(Array(values)) }
        let stride = values.count / count
        return .array(
            (0..<count).map { index in
                let start = values.startIndex + index * stride
                return nest(values[start..<(start + stride)], dimensions: inner)
            }
        )
    }
}
