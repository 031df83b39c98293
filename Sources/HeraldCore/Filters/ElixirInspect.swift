/// Elixir's `inspect/2` (Elixir 1.19, default options: `limit: 50`, `printable_limit: 4096`) for the few term
/// shapes upstream interpolates into client-visible messages: strings, booleans, `nil`, lists and tuples.
/// `pretty: true` is `inspect(term, pretty: true)`, which wraps at 80 columns with Elixir's document algebra;
/// that algebra is ported here (only the constructs these shapes use) so long filter lists wrap as upstream's do.
enum ElixirInspect {
    indirect enum Term {
        case string(String)
        case bool(Bool)
        case nilAtom
        /// A number, shown as written.
        case number(String)
        case list([Term])
        case tuple([Term])
        /// A map with string keys, shown `%{"a" => 1}` with keys sorted as Elixir orders them.
        case map([(key: String, value: Term)])

        /// A JSON value as upstream sees it after decoding (objects become maps).
        init(_ value: JSONValue) {
            switch value {
            case .null: self = .nilAtom
            case .bool(let b): self = .bool(b)
            case .number(let n): self = .number(n)
            case .string(let s): self = .string(s)
            case .array(let a): self = .list(a.map(Term.init))
            case .object(let o): self = .map(o.members.map { ($0.key, Term($0.value)) })
            }
        }
    }

    static let defaultLimit = 50
    static let printableLimit = 4096
    static let prettyWidth = 80

    static func inspect(_ term: Term, pretty: Bool = false) -> String {
        let (doc, _) = document(term, limit: defaultLimit)
        return format(.group(doc), width: pretty ? prettyWidth : nil)
    }

    // MARK: - Terms to documents

    /// The document and, when the term consumed more of the element limit than its own slot, the limit left
    /// (Elixir's `{doc, opts}` return); nil means "one slot" (Elixir returning a bare doc).
    private static func document(_ term: Term, limit: Int) -> (Doc, Int?) {
        switch term {
        case .string(let string): return stringDocument(string, limit: limit)
        case .bool(let value): return (.text(value ? "true" : "false"), nil)
        case .nilAtom: return (.text("nil"), nil)
        case .number(let text): return (.text(text), nil)
        case .map(let pairs):
            if pairs.isEmpty { return (.text("%{}"), nil) }
            let sorted = pairs.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            var docs: [Doc] = []
            var remaining = limit
            for pair in sorted {
                let (key, _) = stringDocument(pair.key, limit: remaining)
                let (value, returned) = document(pair.value, limit: remaining - 1)
                remaining = returned ?? remaining - 1
                docs.append(.concat(.concat(key, .text(" => ")), value))
            }
            var joined = docs[docs.count - 1]
            for doc in docs.dropLast().reversed() {
                joined = .concat(.concat(doc, .text(",")), .concat(.breakPoint(" ", flex: false), joined))
            }
            return (.group(.concat(.concat(.text("%{"), .nest(joined, 2)), .text("}"))), remaining)
        case .list(let items):
            if items.isEmpty { return (.text("[]"), nil) }
            return container(open: "[", items, close: "]", limit: limit, alwaysFlex: false)
        case .tuple(let items):
            if items.isEmpty { return (.text("{}"), limit) }
            return container(open: "{", items, close: "}", limit: limit, alwaysFlex: true)
        }
    }

    /// `Inspect.Algebra.container_doc_with_opts`: elements separated by `,`; all-simple (text-only) elements,
    /// or tuples, break "flex" (as many per line as fit), anything else one per line.
    private static func container(open: String, _ items: [Term], close: String, limit: Int, alwaysFlex: Bool) -> (Doc, Int?) {
        var docs: [Doc] = []
        var remaining = limit
        var allSimple = !alwaysFlex
        for item in items {
            if remaining <= 0 {
                docs.append(.text("..."))
                break
            }
            let (doc, returned) = document(item, limit: remaining - 1)
            remaining = returned ?? remaining - 1
            allSimple = allSimple && doc.isSimple
            docs.append(doc)
        }
        let flex = allSimple || alwaysFlex
        var joined = docs[docs.count - 1]
        for doc in docs.dropLast().reversed() {
            joined = .concat(.concat(doc, .text(",")), .concat(.breakPoint(" ", flex: flex), joined))
        }
        let group: Doc
        if flex {
            group = .group(.concat(.concat(.text(open), .nest(joined, 1)), .text(close)))
        } else {
            let inner = Doc.concat(.text(open), .concat(.breakPoint("", flex: false), joined))
            group = .group(.concat(.nest(inner, 2), .concat(.breakPoint("", flex: false), .text(close))))
        }
        return (group, remaining)
    }

    /// A printable string is quoted and escaped (`Code.Identifier.escape`); any other is shown as its bytes.
    private static func stringDocument(_ string: String, limit: Int) -> (Doc, Int?) {
        guard isPrintable(string) else {
            let bytes = Array(string.utf8)
            let inner = bytesDocument(bytes[...], counter: limit)
            let doc = Doc.group(.concat(.concat(.text("<<"), .nest(inner, 2)), .text(">>")))
            return (doc, max(0, limit - bytes.count))
        }
        var output = "\""
        var count = 0
        let scalars = Array(string.unicodeScalars)
        var index = 0
        while index < scalars.count {
            if count == printableLimit {
                return (.text(output + "\" <> ..."), nil)
            }
            let scalar = scalars[index]
            if scalar == "#", index + 1 < scalars.count, scalars[index + 1] == "{" {
                output += "\\#{"
                index += 2
            } else {
                output += escaped(scalar)
                index += 1
            }
            count += 1
        }
        return (.text(output + "\""), nil)
    }

    private static func bytesDocument(_ bytes: ArraySlice<UInt8>, counter: Int) -> Doc {
        if counter == 0 { return .text("...") }
        guard let first = bytes.first else { return .empty }
        if bytes.count == 1 { return .text(String(first)) }
        let rest = bytesDocument(bytes.dropFirst(), counter: counter - 1)
        return .concat(.concat(.text(String(first)), .text(",")), .concat(.breakPoint(" ", flex: true), rest))
    }

    /// `String.printable?/2` over the first `printableLimit` code points.
    private static func isPrintable(_ string: String) -> Bool {
        for scalar in string.unicodeScalars.prefix(printableLimit) {
            switch scalar.value {
            case 0x20...0x7E, 0x0A, 0x0D, 0x09, 0x0B, 0x08, 0x0C, 0x1B, 0x7F, 0x07: continue
            case 0xA0...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: continue
            default: return false
            }
        }
        return true
    }

    private static func escaped(_ scalar: Unicode.Scalar) -> String {
        switch scalar.value {
        case 0x22: return "\\\""
        case 0x07: return "\\a"
        case 0x08: return "\\b"
        case 0x7F: return "\\d"
        case 0x1B: return "\\e"
        case 0x0C: return "\\f"
        case 0x0A: return "\\n"
        case 0x0D: return "\\r"
        case 0x09: return "\\t"
        case 0x0B: return "\\v"
        case 0x5C: return "\\\\"
        case 0x00: return "\\0"
        // Invisible or confusable code points Elixir shows as \uXXXX.
        case 0xFEFF, 0x2061...0x2064, 0x061C, 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069, 0xFFF9...0xFFFC,
            0x200C, 0x200D, 0x034F, 0x00A0, 0x200B, 0x2060, 0x2028, 0x2029, 0x2000...0x200A, 0x205F:
            return "\\u" + hex(scalar.value, width: 4)
        case 0x20...0x7E, 0xA0...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF:
            return String(scalar)
        case ..<0x100: return "\\x" + hex(scalar.value, width: 2)
        case ..<0x10000: return "\\x{" + hex(scalar.value, width: 4) + "}"
        default: return "\\x{" + hex(scalar.value, width: 6) + "}"
        }
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    // MARK: - Document algebra (`Inspect.Algebra`)

    indirect enum Doc {
        case empty
        case text(String)
        case concat(Doc, Doc)
        case nest(Doc, Int)
        /// A strict break breaks when its group does; a flex break only when what follows does not fit.
        case breakPoint(String, flex: Bool)
        case group(Doc)

        var isSimple: Bool {
            switch self {
            case .empty, .text: true
            case .concat(let left, let right): left.isSimple && right.isSimple
            case .nest, .breakPoint, .group: false
            }
        }
    }

    private enum Mode { case flat, broken }

    private enum Item {
        case doc(indent: Int, Mode, Doc)
        /// End of a group that was laid out: `fits` stops there.
        case groupOver
        /// Restores the "a break was seen" flag after a nested group (only in `fits`).
        case tail(Bool)
    }

    /// `Inspect.Algebra.format/2`; a nil width never breaks.
    static func format(_ doc: Doc, width: Int?) -> String {
        var output = ""
        var column = 0
        var stack: [Item] = [.doc(indent: 0, .flat, doc)]
        while let item = stack.popLast() {
            guard case .doc(let indent, let mode, let doc) = item else { continue }
            switch doc {
            case .empty:
                break
            case .text(let text):
                output += text
                column += text.utf8.count
            case .concat(let left, let right):
                stack.append(.doc(indent: indent, mode, right))
                stack.append(.doc(indent: indent, mode, left))
            case .nest(let inner, let level):
                stack.append(.doc(indent: indent + level, mode, inner))
            case .breakPoint(let text, flex: true):
                column += text.utf8.count
                if let width, mode == .broken, !fits(width: width, column: column, sawBreak: true, stack) {
                    output += "\n" + String(repeating: " ", count: indent)
                    column = indent
                } else {
                    output += text
                }
            case .breakPoint(let text, flex: false):
                if mode == .broken {
                    output += "\n" + String(repeating: " ", count: indent)
                    column = indent
                } else {
                    output += text
                    column += text.utf8.count
                }
            case .group(let inner):
                let flat = width.map { fits(width: $0, column: column, sawBreak: false, [.doc(indent: indent, .flat, inner)]) } ?? true
                stack.append(.groupOver)
                stack.append(.doc(indent: indent, flat ? .flat : .broken, inner))
            }
        }
        return output
    }

    /// `Inspect.Algebra.fits?/4`: whether the items, laid out from `column`, stay within `width` up to their
    /// first forced line break (only counting once some break was passed).
    private static func fits(width: Int, column: Int, sawBreak: Bool, _ items: [Item]) -> Bool {
        var column = column
        var sawBreak = sawBreak
        var stack = items
        while true {
            if column > width, sawBreak { return false }
            guard let item = stack.popLast() else { return true }
            switch item {
            case .tail(let restored):
                sawBreak = restored
            case .groupOver:
                return sawBreak
            case .doc(let indent, let mode, let doc):
                switch doc {
                case .empty:
                    break
                case .text(let text):
                    column += text.utf8.count
                case .breakPoint(let text, _):
                    if mode == .broken { return true }
                    column += text.utf8.count
                    sawBreak = true
                case .nest(let inner, let level):
                    stack.append(.doc(indent: indent + level, mode, inner))
                case .concat(let left, let right):
                    stack.append(.doc(indent: indent, mode, right))
                    stack.append(.doc(indent: indent, mode, left))
                case .group(let inner):
                    stack.append(.tail(sawBreak))
                    stack.append(.doc(indent: indent, .flat, inner))
                }
            }
        }
    }
}
