/// A non-NULL column value in the typed form filters compare. Equality and hashing follow PostgreSQL's `=`
/// for the column type (so the binding index can key on it), ordering follows its `<`. Two values are only
/// ever compared when they were read for the same column type.
enum FilterValue: Sendable {
    /// int2, int4, int8, oid.
    case integer(Int64)
    /// float4 (rounded to `Float` first) and float8; see `float(_:)` for NaN and -0.
    case float(Double)
    case numeric(ExactDecimal)
    case bool(Bool)
    /// Text types, already in their comparison form (bpchar without trailing spaces, citext lower-cased);
    /// compared by UTF-8 bytes, i.e. by code point.
    case text(String)
    /// The 128 bits, big-endian halves: compares as PostgreSQL's `memcmp`.
    case uuid(UInt64, UInt64)
    /// date (days since 1970-01-01), timestamp and timestamptz (microseconds since 2000-01-01 UTC, like
    /// PostgreSQL, whose range would not fit in Int64 from 1970), time (microseconds since midnight);
    /// ±infinity are `Int64.min`/`Int64.max`.
    case instant(Int64)
    /// timetz: PostgreSQL orders by the UTC time, then by the zone.
    case zonedTime(utcMicroseconds: Int64, secondsWestOfUTC: Int32)
    case bytes([UInt8])
    case json(CanonicalJSON)
    /// Elements in row-major order (nil = NULL) and the length of each dimension.
    indirect case array([FilterValue?], dimensions: [Int])

    /// A float normalised so that PostgreSQL's `NaN = NaN` and `-0 = 0` hold for `==` and hashing.
    static func float(normalising value: Double) -> FilterValue {
        if value.isNaN { return .float(.nan) }
        return .float(value == 0 ? 0 : value)
    }

    /// PostgreSQL's comparison: negative, zero or positive.
    func compare(_ other: FilterValue) -> Int {
        switch (self, other) {
        case (.integer(let a), .integer(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.float(let a), .float(let b)):
            // NaN sorts above everything and equals itself.
            if a.isNaN || b.isNaN { return a.isNaN == b.isNaN ? 0 : (a.isNaN ? 1 : -1) }
            return a < b ? -1 : (a == b ? 0 : 1)
        case (.numeric(let a), .numeric(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.text(let a), .text(let b)): return compareBytes(a.utf8, b.utf8)
        case (.uuid(let a1, let a2), .uuid(let b1, let b2)):
            if a1 != b1 { return a1 < b1 ? -1 : 1 }
            return a2 < b2 ? -1 : (a2 == b2 ? 0 : 1)
        case (.instant(let a), .instant(let b)): return a < b ? -1 : (a == b ? 0 : 1)
        case (.zonedTime(let a, let za), .zonedTime(let b, let zb)):
            if a != b { return a < b ? -1 : 1 }
            return za < zb ? -1 : (za == zb ? 0 : 1)
        case (.bytes(let a), .bytes(let b)): return compareBytes(a, b)
        case (.json(let a), .json(let b)): return a == b ? 0 : (a < b ? -1 : 1)
        case (.array(let a, let aDimensions), .array(let b, let bDimensions)):
            return FilterValue.compareArrays(a, aDimensions, b, bDimensions)
        default:
            return caseRank < other.caseRank ? -1 : (caseRank == other.caseRank ? 0 : 1)
        }
    }

    /// `array_cmp`: element by element (NULLs equal to each other and above any value), then the element
    /// count, then the dimensions.
    private static func compareArrays(_ a: [FilterValue?], _ aDimensions: [Int], _ b: [FilterValue?], _ bDimensions: [Int]) -> Int {
        for (left, right) in zip(a, b) {
            switch (left, right) {
            case (nil, nil): continue
            case (nil, _): return 1
            case (_, nil): return -1
            case (let left?, let right?):
                let order = left.compare(right)
                if order != 0 { return order }
            }
        }
        if a.count != b.count { return a.count < b.count ? -1 : 1 }
        if aDimensions.count != bDimensions.count { return aDimensions.count < bDimensions.count ? -1 : 1 }
        for (left, right) in zip(aDimensions, bDimensions) where left != right {
            return left < right ? -1 : 1
        }
        return 0
    }

    private var caseRank: Int {
        switch self {
        case .integer: 0
        case .float: 1
        case .numeric: 2
        case .bool: 3
        case .text: 4
        case .uuid: 5
        case .instant: 6
        case .zonedTime: 7
        case .bytes: 8
        case .json: 9
        case .array: 10
        }
    }
}

extension FilterValue: Hashable {
    static func == (lhs: FilterValue, rhs: FilterValue) -> Bool { lhs.compare(rhs) == 0 }

    func hash(into hasher: inout Hasher) {
        hasher.combine(caseRank)
        switch self {
        case .integer(let value): hasher.combine(value)
        case .float(let value): hasher.combine(value.isNaN ? Double.nan.bitPattern : value.bitPattern)
        case .numeric(let value): hasher.combine(value)
        case .bool(let value): hasher.combine(value)
        case .text(let value): hashBytes(value.utf8, into: &hasher)
        case .uuid(let high, let low):
            hasher.combine(high)
            hasher.combine(low)
        case .instant(let value): hasher.combine(value)
        case .zonedTime(let time, let zone):
            hasher.combine(time)
            hasher.combine(zone)
        case .bytes(let value): hashBytes(value, into: &hasher)
        case .json(let value): hasher.combine(value)
        case .array(let elements, let dimensions):
            hasher.combine(elements)
            hasher.combine(dimensions)
        }
    }
}

/// A jsonb value with jsonb's equality: object keys unordered (last duplicate wins), numbers by value.
indirect enum CanonicalJSON: Hashable, Comparable, Sendable {
    case null
    case bool(Bool)
    case number(ExactDecimal)
    case string(String)
    case array([CanonicalJSON])
    /// Members sorted by key bytes.
    case object([Member])

    struct Member: Hashable, Sendable {
        var key: String
        var value: CanonicalJSON
    }

    /// Nil when a number literal is not a finite decimal (cannot happen for parsed JSON).
    init?(_ value: JSONValue) {
        switch value {
        case .null: self = .null
        case .bool(let flag): self = .bool(flag)
        case .number(let literal):
            guard let number = ExactDecimal(literal[...].utf8, allowSpecial: false) else { return nil }
            self = .number(number)
        case .string(let string): self = .string(string)
        case .array(let elements):
            var canonical: [CanonicalJSON] = []
            canonical.reserveCapacity(elements.count)
            for element in elements {
                guard let converted = CanonicalJSON(element) else { return nil }
                canonical.append(converted)
            }
            self = .array(canonical)
        case .object(let object):
            var members: [Member] = []
            members.reserveCapacity(object.count)
            for member in object.members {
                guard let converted = CanonicalJSON(member.value) else { return nil }
                members.removeAll { $0.key == member.key }
                members.append(Member(key: member.key, value: converted))
            }
            members.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
            self = .object(members)
        }
    }

    /// A total order consistent with `==` so that `FilterValue.compare` stays total. It is not jsonb's
    /// ordering: jsonb ordering operators are rejected when binding.
    static func < (lhs: CanonicalJSON, rhs: CanonicalJSON) -> Bool {
        switch (lhs, rhs) {
        case (.bool(let a), .bool(let b)): return !a && b
        case (.number(let a), .number(let b)): return a < b
        case (.string(let a), .string(let b)): return a < b
        case (.array(let a), .array(let b)): return a.lexicographicallyPrecedes(b)
        case (.object(let a), .object(let b)):
            return a.lexicographicallyPrecedes(b) { ($0.key, $0.value) < ($1.key, $1.value) }
        default: return lhs.rank < rhs.rank
        }
    }

    private var rank: Int {
        switch self {
        case .null: 0
        case .bool: 1
        case .number: 2
        case .string: 3
        case .array: 4
        case .object: 5
        }
    }
}

private func compareBytes<C: Collection<UInt8>>(_ a: C, _ b: C) -> Int {
    var left = a.makeIterator()
    var right = b.makeIterator()
    while true {
        switch (left.next(), right.next()) {
        case (nil, nil): return 0
        case (nil, _): return -1
        case (_, nil): return 1
        case (let x?, let y?) where x != y: return x < y ? -1 : 1
        default: continue
        }
    }
}

private func hashBytes<C: Collection<UInt8>>(_ bytes: C, into hasher: inout Hasher) {
    let hashed: Void? = bytes.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    if hashed == nil {
        for byte in bytes { hasher.combine(byte) }
    }
    hasher.combine(bytes.count)
}
