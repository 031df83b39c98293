/// PostgreSQL's input functions for the types filters compare: the text of a filter value (or of a row value)
/// becomes a `FilterValue`, or the error PostgreSQL raises for it, word for word where it matters.
enum ValueInput {
    static func read(_ text: String, as type: ScalarType) throws(FilterBindingError) -> FilterValue {
        switch type {
        case .int2: return .integer(try integer(text, in: Int64(Int16.min)...Int64(Int16.max), typeName: "smallint"))
        case .int4: return .integer(try integer(text, in: Int64(Int32.min)...Int64(Int32.max), typeName: "integer"))
        case .int8: return .integer(try integer(text, in: Int64.min...Int64.max, typeName: "bigint"))
        case .oid:
            // oidin accepts negative values down to INT32_MIN and wraps them, like strtoul.
            let value = try integer(text, in: Int64(Int32.min)...Int64(UInt32.max), typeName: "oid")
            return .integer(Int64(UInt32(truncatingIfNeeded: value)))
        case .float4: return try float(text, single: true)
        case .float8: return try float(text, single: false)
        case .numeric:
            guard let number = ExactDecimal(text[...].utf8, allowSpecial: true) else {
                throw .invalidSyntax(type: "numeric", input: text)
            }
            return .numeric(number)
        case .bool: return .bool(try bool(text))
        case .text, .varchar, .other: return .text(text)
        case .bpchar: return .text(withoutTrailingSpaces(text))
        case .name: return .text(truncatedName(text))
        case .citext: return .text(text.lowercased())
        case .uuid: return try uuid(text)
        case .date: return try DateTimeInput.date(text)
        case .timestamp: return try DateTimeInput.timestamp(text, withZone: false)
        case .timestamptz: return try DateTimeInput.timestamp(text, withZone: true)
        case .time: return try DateTimeInput.time(text, withZone: false)
        case .timetz: return try DateTimeInput.time(text, withZone: true)
        case .bytea: return .bytes(try bytea(text))
        case .json, .jsonb:
            guard let parsed = try? JSONValue.parse(text), let canonical = CanonicalJSON(parsed) else {
                throw .invalidText("invalid input syntax for type json")
            }
            return .json(canonical)
        }
    }

    /// An array literal (`{1,2,NULL}`) of `element`s.
    static func readArray(_ text: String, of element: ScalarType) throws(FilterBindingError) -> FilterValue {
        let (elements, dimensions) = try readArrayElements(text, of: element)
        return .array(elements, dimensions: dimensions)
    }

    /// The elements (row-major, nil = NULL) and dimensions of an array literal.
    static func readArrayElements(_ text: String, of element: ScalarType) throws(FilterBindingError) -> ([FilterValue?], [Int]) {
        let literal = try ArrayLiteral.parse(text)
        var values: [FilterValue?] = []
        values.reserveCapacity(literal.elements.count)
        for item in literal.elements {
            if let item { values.append(try read(item, as: element)) } else { values.append(nil) }
        }
        return (values, literal.dimensions)
    }

    /// pg_strtoint16/32/64: optional surrounding whitespace and sign, then decimal digits only.
    static func integer(_ text: String, in range: ClosedRange<Int64>, typeName: String) throws(FilterBindingError) -> Int64 {
        var bytes = text.utf8[...]
        while let first = bytes.first, isPostgresSpace(first) { bytes.removeFirst() }
        while let last = bytes.last, isPostgresSpace(last) { bytes.removeLast() }
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            bytes.removeFirst()
        }
        guard !bytes.isEmpty, bytes.allSatisfy(isDigit) else { throw .invalidSyntax(type: typeName, input: text) }
        // Accumulate negatively so Int64.min itself parses.
        var value: Int64 = 0
        for byte in bytes {
            let (shifted, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (next, overflow2) = shifted.subtractingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { throw .outOfRange("value \"\(text)\" is out of range for type \(typeName)") }
            value = next
        }
        if !negative {
            guard value != .min else { throw .outOfRange("value \"\(text)\" is out of range for type \(typeName)") }
            value = -value
        }
        guard range.contains(value) else { throw .outOfRange("value \"\(text)\" is out of range for type \(typeName)") }
        return value
    }

    /// float4in/float8in: `NaN`, `Infinity`, `inf` (any case, infinities signed), else strtod's syntax;
    /// overflow and underflow to zero are errors.
    static func float(_ text: String, single: Bool) throws(FilterBindingError) -> FilterValue {
        let typeName = single ? "real" : "double precision"
        var bytes = text.utf8[...]
        while let first = bytes.first, isPostgresSpace(first) { bytes.removeFirst() }
        while let last = bytes.last, isPostgresSpace(last) { bytes.removeLast() }
        let trimmed = String(Substring(bytes))
        switch trimmed.lowercased() {
        case "nan": return .float(normalising: .nan)
        case "infinity", "+infinity", "inf", "+inf": return .float(normalising: .infinity)
        case "-infinity", "-inf": return .float(normalising: -.infinity)
        default: break
        }
        let parsed: Double?
        if single { parsed = Float(trimmed).map(Double.init) } else { parsed = Double(trimmed) }
        guard let value = parsed else { throw .invalidSyntax(type: typeName, input: text) }
        let mantissaIsZero = !trimmed.utf8.prefix { $0 != UInt8(ascii: "e") && $0 != UInt8(ascii: "E") }
            .contains { (UInt8(ascii: "1")...UInt8(ascii: "9")).contains($0) }
        if value.isInfinite || (value == 0 && !mantissaIsZero) {
            throw .outOfRange("\"\(text)\" is out of range for type \(typeName)")
        }
        return .float(normalising: value)
    }

    /// boolin: surrounding whitespace, then any prefix of true/false/yes/no, `on`, `off`/`of`, `1`, `0`.
    static func bool(_ text: String) throws(FilterBindingError) -> Bool {
        var bytes = text.utf8[...]
        while let first = bytes.first, isPostgresSpace(first) { bytes.removeFirst() }
        while let last = bytes.last, isPostgresSpace(last) { bytes.removeLast() }
        let word = String(Substring(bytes)).lowercased()
        func isPrefix(of full: String, minimum: Int = 1) -> Bool {
            word.utf8.count >= minimum && full.utf8.starts(with: word.utf8)
        }
        if isPrefix(of: "true") || isPrefix(of: "yes") || word == "on" || word == "1" { return true }
        if isPrefix(of: "false") || isPrefix(of: "no") || isPrefix(of: "off", minimum: 2) || word == "0" { return false }
        throw .invalidSyntax(type: "boolean", input: text)
    }

    /// string_to_uuid: 32 hex digits, a hyphen allowed after any group of four, optionally in braces.
    static func uuid(_ text: String) throws(FilterBindingError) -> FilterValue {
        var bytes = text.utf8[...]
        let braces = bytes.first == UInt8(ascii: "{")
        if braces { bytes.removeFirst() }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for position in 0..<16 {
            guard let a = bytes.popFirst().flatMap(hexValue), let b = bytes.popFirst().flatMap(hexValue) else {
                throw .invalidSyntax(type: "uuid", input: text)
            }
            let byte = UInt64(a << 4 | b)
            if position < 8 { high = high << 8 | byte } else { low = low << 8 | byte }
            if bytes.first == UInt8(ascii: "-"), position % 2 == 1, position < 15 { bytes.removeFirst() }
        }
        if braces {
            guard bytes.popFirst() == UInt8(ascii: "}") else { throw .invalidSyntax(type: "uuid", input: text) }
        }
        guard bytes.isEmpty else { throw .invalidSyntax(type: "uuid", input: text) }
        return .uuid(high, low)
    }

    /// byteain: `\x` + hex pairs (whitespace between pairs allowed), or the escape format.
    static func bytea(_ text: String) throws(FilterBindingError) -> [UInt8] {
        let bytes = Array(text.utf8)
        var output: [UInt8] = []
        if bytes.count >= 2, bytes[0] == UInt8(ascii: "\\"), bytes[1] == UInt8(ascii: "x") {
            var index = 2
            while index < bytes.count {
                if isPostgresSpace(bytes[index]) {
                    index += 1
                    continue
                }
                guard let high = hexValue(bytes[index]) else {
                    throw .invalidParameter("invalid hexadecimal digit: \"\(String(decoding: [bytes[index]], as: UTF8.self))\"")
                }
                guard index + 1 < bytes.count else { throw .invalidParameter("invalid hexadecimal data: odd number of digits") }
                guard let low = hexValue(bytes[index + 1]) else {
                    throw .invalidParameter("invalid hexadecimal digit: \"\(String(decoding: [bytes[index + 1]], as: UTF8.self))\"")
                }
                output.append(high << 4 | low)
                index += 2
            }
            return output
        }
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                output.append(byte)
                index += 1
                continue
            }
            if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\\") {
                output.append(byte)
                index += 2
            } else if index + 3 < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "3")).contains(bytes[index + 1]),
                (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[index + 2]),
                (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[index + 3])
            {
                let value = (bytes[index + 1] - 48) << 6 | (bytes[index + 2] - 48) << 3 | (bytes[index + 3] - 48)
                output.append(value)
                index += 4
            } else {
                // byteain's message does not quote the input.
                throw .invalidText("invalid input syntax for type bytea")
            }
        }
        return output
    }

    /// bpchar comparisons ignore trailing spaces.
    static func withoutTrailingSpaces(_ text: String) -> String {
        guard text.utf8.last == UInt8(ascii: " ") else { return text }
        let end = text.utf8.lastIndex { $0 != UInt8(ascii: " ") }.map { text.utf8.index(after: $0) } ?? text.utf8.startIndex
        return String(Substring(text.utf8[..<end]))
    }

    /// `name` keeps at most 63 bytes, cut on a character boundary.
    static func truncatedName(_ text: String) -> String {
        guard text.utf8.count > 63 else { return text }
        var end = text.utf8.index(text.utf8.startIndex, offsetBy: 63)
        while end > text.utf8.startIndex, UTF8.isContinuation(text.utf8[end]) { end = text.utf8.index(before: end) }
        return String(Substring(text.utf8[..<end]))
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
