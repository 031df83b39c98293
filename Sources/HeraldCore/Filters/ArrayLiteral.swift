/// PostgreSQL's array literal syntax (`array_in`): `{a, "b,c", NULL, {nested}}` with double quotes and
/// backslash escapes, surrounding whitespace of unquoted elements dropped, unquoted `NULL` (any case) as SQL
/// NULL. Dimension decorations (`[1:3]={…}`) are not supported.
struct ArrayLiteral: Equatable {
    /// Elements in row-major order; nil is NULL.
    var elements: [String?]
    /// The length of each dimension; empty for `{}`.
    var dimensions: [Int]

    static let maximumDimensions = 6

    static func parse(_ text: String) throws(FilterBindingError) -> ArrayLiteral {
        var parser = Parser(text: text)
        parser.skipSpaces()
        guard parser.peek() == UInt8(ascii: "{") else {
            throw parser.malformed("Array value must start with \"{\" or dimension information.")
        }
        parser.index += 1
        let root = try parser.array(depth: 1)
        parser.skipSpaces()
        guard parser.atEnd else { throw parser.malformed("Junk after closing right brace.") }
        var elements: [String?] = []
        let dimensions = try parser.flatten(root, into: &elements)
        return ArrayLiteral(elements: elements, dimensions: elements.isEmpty ? [] : dimensions)
    }

    private indirect enum Node {
        case element(String?)
        case array([Node])
    }

    private struct Parser {
        let text: String
        let bytes: [UInt8]
        var index = 0

        init(text: String) {
            self.text = text
            self.bytes = Array(text.utf8)
        }

        var atEnd: Bool { index >= bytes.count }

        func peek() -> UInt8? { index < bytes.count ? bytes[index] : nil }

        mutating func skipSpaces() {
            while let byte = peek(), isPostgresSpace(byte) { index += 1 }
        }

        func malformed(_ detail: String) -> FilterBindingError {
            .invalidText("malformed array literal: \"\(text)\"", detail: detail)
        }

        func unexpected(_ byte: UInt8?) -> FilterBindingError {
            guard let byte else { return malformed("Unexpected end of input.") }
            return malformed("Unexpected \"\(String(decoding: [byte], as: UTF8.self))\" character.")
        }

        /// After the opening brace: items up to and including the closing brace.
        mutating func array(depth: Int) throws(FilterBindingError) -> Node {
            guard depth <= ArrayLiteral.maximumDimensions else {
                throw FilterBindingError(
                    sqlState: "54000", conditionName: "program_limit_exceeded",
                    message: "number of array dimensions (\(depth)) exceeds the maximum allowed (\(ArrayLiteral.maximumDimensions))")
            }
            var items: [Node] = []
            skipSpaces()
            if peek() == UInt8(ascii: "}") {
                index += 1
                return .array(items)
            }
            while true {
                skipSpaces()
                switch peek() {
                case UInt8(ascii: "{"):
                    index += 1
                    items.append(try array(depth: depth + 1))
                case UInt8(ascii: "}"), UInt8(ascii: ","), nil:
                    throw unexpected(peek())
                default:
                    items.append(.element(try element()))
                }
                skipSpaces()
                switch peek() {
                case UInt8(ascii: ","): index += 1
                case UInt8(ascii: "}"):
                    index += 1
                    return .array(items)
                case nil: throw unexpected(nil)
                default: throw malformed("Unexpected array element.")
                }
            }
        }

        mutating func element() throws(FilterBindingError) -> String? {
            var value: [UInt8] = []
            if peek() == UInt8(ascii: "\"") {
                index += 1
                while true {
                    guard let byte = peek() else { throw unexpected(nil) }
                    index += 1
                    if byte == UInt8(ascii: "\"") { return String(decoding: value, as: UTF8.self) }
                    if byte == UInt8(ascii: "\\") {
                        guard let escaped = peek() else { throw unexpected(nil) }
                        index += 1
                        value.append(escaped)
                    } else {
                        value.append(byte)
                    }
                }
            }
            var escaped = false
            // Length of `value` up to its last escaped or non-space byte: trailing plain spaces are dropped.
            var keptLength = 0
            while let byte = peek() {
                switch byte {
                case UInt8(ascii: ","), UInt8(ascii: "}"):
                    value.removeSubrange(keptLength...)
                    if !escaped, String(decoding: value, as: UTF8.self).lowercased() == "null" { return nil }
                    return String(decoding: value, as: UTF8.self)
                case UInt8(ascii: "{"):
                    throw unexpected(byte)
                case UInt8(ascii: "\""):
                    throw malformed("Unexpected array element.")
                case UInt8(ascii: "\\"):
                    index += 1
                    guard let next = peek() else { throw unexpected(nil) }
                    value.append(next)
                    keptLength = value.count
                    escaped = true
                default:
                    value.append(byte)
                    if !isPostgresSpace(byte) { keptLength = value.count }
                }
                index += 1
            }
            throw unexpected(nil)
        }

        /// Appends the elements in row-major order and returns the dimensions, checking that every sub-array
        /// of a level has the same shape.
        func flatten(_ node: Node, into elements: inout [String?]) throws(FilterBindingError) -> [Int] {
            guard case .array(let items) = node else { return [] }
            var shape: [Int]?
            var sawElement = false
            for item in items {
                switch item {
                case .element(let value):
                    guard shape == nil else { throw malformed("Unexpected array element.") }
                    sawElement = true
                    elements.append(value)
                case .array:
                    guard !sawElement else { throw malformed("Unexpected array element.") }
                    let childShape = try flatten(item, into: &elements)
                    if let shape, shape != childShape {
                        throw malformed("Multidimensional arrays must have sub-arrays with matching dimensions.")
                    }
                    shape = childShape
                }
            }
            return [items.count] + (shape ?? [])
        }
    }
}
