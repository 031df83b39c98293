/// A `numeric` value compared exactly, as PostgreSQL does: `numeric(30,10)` values do not fit a `Double`.
/// Normalised so that equal numbers have equal representations (`1.50` = `1.5`), which makes the synthesized
/// `Hashable` agree with SQL equality. Ordering: -Infinity < finite < Infinity < NaN, and NaN = NaN.
struct ExactDecimal: Hashable, Comparable, Sendable {
    enum Kind: Int, Hashable, Sendable {
        case negativeInfinity, finite, positiveInfinity, nan
    }

    var kind: Kind
    /// Finite values only; zero is never negative.
    var isNegative: Bool
    /// Significant digits (ASCII), no leading or trailing zeros; empty for zero.
    var digits: String
    /// The value is `0.digits × 10^exponent` (0 for zero).
    var exponent: Int

    static let nan = ExactDecimal(kind: .nan, isNegative: false, digits: "", exponent: 0)

    /// PostgreSQL rejects exponents beyond this with "invalid input syntax"; it also keeps the arithmetic safe.
    static let maximumExponent = 200_000

    /// Reads a decimal literal: optional surrounding whitespace, sign, digits with an optional `.`, optional
    /// exponent; with `allowSpecial`, also `NaN`, `Infinity` and `inf` (any case, infinities signed).
    /// Nil when the text is not one.
    init?(_ text: Substring.UTF8View, allowSpecial: Bool) {
        var bytes = text[...]
        while let first = bytes.first, isPostgresSpace(first) { bytes.removeFirst() }
        while let last = bytes.last, isPostgresSpace(last) { bytes.removeLast() }
        if allowSpecial, let special = ExactDecimal.special(bytes) {
            self = special
            return
        }
        var negative = false
        if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            bytes.removeFirst()
        }
        var significant: [UInt8] = []
        var pointPosition = 0
        var sawDigit = false
        var sawPoint = false
        while let byte = bytes.first {
            if isDigit(byte) {
                sawDigit = true
                if byte == UInt8(ascii: "0") && significant.isEmpty {
                    // Leading zero: only shifts the point when it comes after it.
                    if sawPoint { pointPosition -= 1 }
                } else {
                    significant.append(byte)
                    if !sawPoint { pointPosition += 1 }
                }
            } else if byte == UInt8(ascii: "."), !sawPoint {
                sawPoint = true
            } else {
                break
            }
            bytes.removeFirst()
        }
        guard sawDigit else { return nil }
        if let marker = bytes.first, marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            bytes.removeFirst()
            var exponentNegative = false
            if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                exponentNegative = sign == UInt8(ascii: "-")
                bytes.removeFirst()
            }
            guard let first = bytes.first, isDigit(first) else { return nil }
            var exponent = 0
            while let byte = bytes.first, isDigit(byte) {
                exponent = exponent * 10 + Int(byte - UInt8(ascii: "0"))
                guard exponent <= ExactDecimal.maximumExponent else { return nil }
                bytes.removeFirst()
            }
            pointPosition += exponentNegative ? -exponent : exponent
        }
        guard bytes.isEmpty else { return nil }
        while significant.last == UInt8(ascii: "0") { significant.removeLast() }
        if significant.isEmpty {
            self.init(kind: .finite, isNegative: false, digits: "", exponent: 0)
        } else {
            self.init(kind: .finite, isNegative: negative, digits: String(decoding: significant, as: UTF8.self), exponent: pointPosition)
        }
    }

    private init(kind: Kind, isNegative: Bool, digits: String, exponent: Int) {
        self.kind = kind
        self.isNegative = isNegative
        self.digits = digits
        self.exponent = exponent
    }

    private static func special(_ bytes: Substring.UTF8View.SubSequence) -> ExactDecimal? {
        let word = String(decoding: bytes, as: UTF8.self).lowercased()
        switch word {
        case "nan": return .nan
        case "infinity", "+infinity", "inf", "+inf": return ExactDecimal(kind: .positiveInfinity, isNegative: false, digits: "", exponent: 0)
        case "-infinity", "-inf": return ExactDecimal(kind: .negativeInfinity, isNegative: false, digits: "", exponent: 0)
        default: return nil
        }
    }

    static func < (lhs: ExactDecimal, rhs: ExactDecimal) -> Bool {
        if lhs.kind != rhs.kind { return lhs.kind.rawValue < rhs.kind.rawValue }
        guard lhs.kind == .finite else { return false }
        if lhs.isNegative != rhs.isNegative { return lhs.isNegative }
        let magnitudeLess = lhs.magnitudePrecedes(rhs)
        return lhs.isNegative ? rhs.magnitudePrecedes(lhs) : magnitudeLess
    }

    private func magnitudePrecedes(_ other: ExactDecimal) -> Bool {
        if digits.isEmpty || other.digits.isEmpty { return digits.isEmpty && !other.digits.isEmpty }
        if exponent != other.exponent { return exponent < other.exponent }
        // Same magnitude order: 0.d1d2… compare digit by digit, a proper prefix being smaller.
        return digits.utf8.lexicographicallyPrecedes(other.digits.utf8)
    }
}

/// PostgreSQL's `isspace` set for input functions (space, \t, \n, \v, \f, \r).
func isPostgresSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || (0x09...0x0D).contains(byte)
}

func isDigit(_ byte: UInt8) -> Bool {
    byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
}
