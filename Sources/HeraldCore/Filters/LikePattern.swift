/// A compiled SQL `LIKE` pattern: `%` any run of characters, `_` exactly one, `\` makes the next character
/// literal. Characters are Unicode code points, as PostgreSQL's UTF-8 matcher sees them; the case-insensitive
/// form (ILIKE, citext) folds each code point to its simple lower case.
struct LikePattern: Sendable {
    enum Token: Sendable, Equatable {
        case literal(Unicode.Scalar)
        case anyOne
        case anyRun
    }

    let tokens: [Token]
    let caseInsensitive: Bool

    init(_ pattern: String, caseInsensitive: Bool) throws(FilterBindingError) {
        var tokens: [Token] = []
        var escaping = false
        for scalar in pattern.unicodeScalars {
            if escaping {
                tokens.append(.literal(caseInsensitive ? LikePattern.folded(scalar) : scalar))
                escaping = false
                continue
            }
            switch scalar {
            case "\\": escaping = true
            case "%": if tokens.last != .anyRun { tokens.append(.anyRun) }
            case "_": tokens.append(.anyOne)
            default: tokens.append(.literal(caseInsensitive ? LikePattern.folded(scalar) : scalar))
            }
        }
        if escaping { throw .invalidEscape("LIKE pattern must not end with escape character") }
        self.tokens = tokens
        self.caseInsensitive = caseInsensitive
    }

    /// Wildcard matching with backtracking to the last `%` only, which is exact for these patterns and linear
    /// in practice (worst case text length × pattern length); no allocation.
    func matches(_ text: String) -> Bool {
        let scalars = text.unicodeScalars
        var position = scalars.startIndex
        var token = 0
        var lastRun: Int?
        var resumeAt = position
        while position < scalars.endIndex {
            if token < tokens.count {
                switch tokens[token] {
                case .anyRun:
                    lastRun = token
                    token += 1
                    resumeAt = position
                    continue
                case .anyOne:
                    token += 1
                    position = scalars.index(after: position)
                    continue
                case .literal(let expected):
                    let actual = scalars[position]
                    if expected == (caseInsensitive ? LikePattern.folded(actual) : actual) {
                        token += 1
                        position = scalars.index(after: position)
                        continue
                    }
                }
            }
            guard let run = lastRun else { return false }
            token = run + 1
            resumeAt = scalars.index(after: resumeAt)
            position = resumeAt
        }
        while token < tokens.count, tokens[token] == .anyRun { token += 1 }
        return token == tokens.count
    }

    /// The simple lower-case mapping (ASCII without a table lookup).
    static func folded(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if scalar.isASCII {
            return (65...90).contains(scalar.value) ? Unicode.Scalar(UInt8(scalar.value) + 32) : scalar
        }
        let mapping = scalar.properties.lowercaseMapping.unicodeScalars
        return mapping.count == 1 ? mapping[mapping.startIndex] : scalar
    }
}
