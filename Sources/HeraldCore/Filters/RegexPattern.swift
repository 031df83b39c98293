/// A compiled `~` / `~*` pattern (PostgreSQL's advanced regular expressions, the subset below), matched
/// anywhere in the text by a Thompson-NFA simulation: time is linear in the text for a given pattern, so a
/// subscriber's pattern cannot stall fan-out the way a backtracking engine can (`(a|a)*b`).
///
/// Supported: literals, `.` (also matches newline), `[...]` with ranges, negation and `[:class:]`, `\d \s \w`
/// and their negations, `^ $ \A \Z`, word constraints `\m \M \y \Y`, groups `(...)` `(?:...)`, `|`,
/// quantifiers `* + ? {m} {m,} {m,n}` (greedy or not: the same for a yes/no match), escapes `\t \n \r \f \v
/// \a \e \b(backspace) \xhh \uhhhh`, and a leading `(?i)`/`(?c)`. Rejected (PostgreSQL accepts them):
/// back-references, lookaround constraints, other embedded options, collating elements. Errors use
/// PostgreSQL's texts. Characters are code points; case-insensitive matching folds them to lower case.
struct RegexPattern: Sendable {
    /// PostgreSQL's limit on `{m,n}` bounds.
    static let maximumRepetition = 255
    /// Compiled programs larger than this are refused, like PostgreSQL's "too complex".
    static let maximumProgramSize = 20_000
    static let maximumNesting = 100

    fileprivate enum Assertion: Sendable {
        case textStart, textEnd, wordStart, wordEnd, wordBoundary, notWordBoundary
    }

    fileprivate enum Instruction: Sendable {
        case scalar(Unicode.Scalar)
        case any
        case set(ScalarSet)
        case assertion(Assertion)
        /// Continue at both targets.
        case split(Int, Int)
        case jump(Int)
        case match
    }

    private let program: [Instruction]
    private let caseInsensitive: Bool

    init(_ pattern: String, caseInsensitive: Bool, operatorName: String) throws(FilterBindingError) {
        do {
            var parser = RegexParser(Array(pattern.unicodeScalars))
            let (tree, forcedCase) = try parser.parse()
            let insensitive = forcedCase ?? caseInsensitive
            var compiler = RegexCompiler(caseInsensitive: insensitive)
            try compiler.emit(tree)
            try compiler.append(.match)
            program = compiler.program
            self.caseInsensitive = insensitive
        } catch {
            throw .raise("invalid regular expression for \(operatorName) filter: invalid regular expression: \(error.reason)")
        }
    }

    /// Whether the pattern matches somewhere in `text`.
    func matches(_ text: String) -> Bool {
        var current = ThreadList(capacity: program.count)
        var next = ThreadList(capacity: program.count)
        var stack: [Int] = []
        var previous: Unicode.Scalar?
        var iterator = text.unicodeScalars.makeIterator()
        var scalar = iterator.next()
        while true {
            // Unanchored search: a new thread starts at every position.
            if addThread(0, to: &current, stack: &stack, previous: previous, next: scalar) { return true }
            guard let consumed = scalar else { return false }
            let folded = caseInsensitive ? LikePattern.folded(consumed) : consumed
            let following = iterator.next()
            for pc in current.members {
                let accepts: Bool
                switch program[pc] {
                case .scalar(let expected): accepts = expected == folded
                case .any: accepts = true
                case .set(let set): accepts = set.contains(consumed, caseInsensitive: caseInsensitive)
                default: accepts = false
                }
                if accepts, addThread(pc + 1, to: &next, stack: &stack, previous: consumed, next: following) { return true }
            }
            swap(&current, &next)
            next.removeAll()
            previous = consumed
            scalar = following
        }
    }

    /// Adds `start` and everything reachable from it without consuming input; true when that reaches a match.
    private func addThread(
        _ start: Int, to list: inout ThreadList, stack: inout [Int], previous: Unicode.Scalar?, next: Unicode.Scalar?
    ) -> Bool {
        stack.append(start)
        while let pc = stack.popLast() {
            guard list.insert(pc) else { continue }
            switch program[pc] {
            case .match:
                stack.removeAll()
                return true
            case .jump(let target): stack.append(target)
            case .split(let first, let second):
                stack.append(second)
                stack.append(first)
            case .assertion(let assertion):
                if RegexPattern.holds(assertion, previous: previous, next: next) { stack.append(pc + 1) }
            case .scalar, .any, .set: break
            }
        }
        return false
    }

    private static func holds(_ assertion: Assertion, previous: Unicode.Scalar?, next: Unicode.Scalar?) -> Bool {
        let wordBefore = previous.map(ScalarSet.isWordCharacter) ?? false
        let wordAfter = next.map(ScalarSet.isWordCharacter) ?? false
        switch assertion {
        case .textStart: return previous == nil
        case .textEnd: return next == nil
        case .wordStart: return !wordBefore && wordAfter
        case .wordEnd: return wordBefore && !wordAfter
        case .wordBoundary: return wordBefore != wordAfter
        case .notWordBoundary: return wordBefore == wordAfter
        }
    }

    /// A set of program counters with O(1) insert, membership and clear (the classic sparse set).
    private struct ThreadList {
        private(set) var members: [Int] = []
        private var positions: [Int]

        init(capacity: Int) {
            positions = Array(repeating: -1, count: capacity)
            members.reserveCapacity(capacity)
        }

        /// False when already present.
        mutating func insert(_ pc: Int) -> Bool {
            let position = positions[pc]
            if position >= 0, position < members.count, members[position] == pc { return false }
            positions[pc] = members.count
            members.append(pc)
            return true
        }

        mutating func removeAll() { members.removeAll(keepingCapacity: true) }
    }
}

/// A bracket expression or class escape.
struct ScalarSet: Sendable {
    enum PosixClass: String, Sendable {
        case alpha, digit, alnum, upper, lower, space, blank, punct, xdigit, cntrl, graph, print, word
    }

    var ranges: [ClosedRange<UInt32>] = []
    var classes: [PosixClass] = []
    /// Classes whose complement belongs to the set (`\D`, `\S`, `\W` inside brackets).
    var complementedClasses: [PosixClass] = []
    var negated = false

    func contains(_ scalar: Unicode.Scalar, caseInsensitive: Bool) -> Bool {
        var found = containsExactly(scalar)
        if !found, caseInsensitive {
            found = containsExactly(LikePattern.folded(scalar)) || containsExactly(ScalarSet.upper(scalar))
        }
        return found != negated
    }

    private func containsExactly(_ scalar: Unicode.Scalar) -> Bool {
        ranges.contains { $0.contains(scalar.value) } || classes.contains { ScalarSet.matches($0, scalar) }
            || complementedClasses.contains { !ScalarSet.matches($0, scalar) }
    }

    static func matches(_ posixClass: PosixClass, _ scalar: Unicode.Scalar) -> Bool {
        let properties = scalar.properties
        switch posixClass {
        // Digits are ASCII only, as in PostgreSQL.
        case .digit: return (48...57).contains(scalar.value)
        case .alpha: return properties.isAlphabetic
        case .alnum: return properties.isAlphabetic || (48...57).contains(scalar.value)
        case .word: return properties.isAlphabetic || (48...57).contains(scalar.value) || scalar == "_"
        case .upper: return properties.isUppercase
        case .lower: return properties.isLowercase
        case .space: return properties.isWhitespace
        case .blank: return scalar == " " || scalar == "\t"
        case .xdigit: return scalar.isASCII && scalar.properties.isASCIIHexDigit
        case .cntrl: return properties.generalCategory == .control
        case .punct:
            switch properties.generalCategory {
            case .connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation, .initialPunctuation,
                .finalPunctuation, .otherPunctuation:
                return true
            case .mathSymbol, .currencySymbol, .modifierSymbol: return scalar.isASCII
            default: return false
            }
        case .graph: return !properties.isWhitespace && properties.generalCategory != .control && properties.generalCategory != .unassigned
        case .print: return scalar == " " || matches(.graph, scalar)
        }
    }

    static func isWordCharacter(_ scalar: Unicode.Scalar) -> Bool { matches(.word, scalar) }

    static func upper(_ scalar: Unicode.Scalar) -> Unicode.Scalar {
        if scalar.isASCII {
            return (97...122).contains(scalar.value) ? Unicode.Scalar(UInt8(scalar.value) - 32) : scalar
        }
        let mapping = scalar.properties.uppercaseMapping.unicodeScalars
        return mapping.count == 1 ? mapping[mapping.startIndex] : scalar
    }
}

private struct RegexError: Error {
    var reason: String
}

private indirect enum RegexNode {
    case scalar(Unicode.Scalar)
    case any
    case set(ScalarSet)
    case assertion(RegexPattern.Assertion)
    case sequence([RegexNode])
    case alternatives([RegexNode])
    case repetition(RegexNode, minimum: Int, maximum: Int?)
}

private struct RegexParser {
    let scalars: [Unicode.Scalar]
    var index = 0

    init(_ scalars: [Unicode.Scalar]) { self.scalars = scalars }

    func peek(_ offset: Int = 0) -> Unicode.Scalar? { index + offset < scalars.count ? scalars[index + offset] : nil }

    /// The tree, and the case sensitivity a leading `(?i)`/`(?c)` imposes.
    mutating func parse() throws(RegexError) -> (RegexNode, Bool?) {
        var forcedCase: Bool?
        if peek() == "(", peek(1) == "?", let letter = peek(2), letter == "i" || letter == "c", peek(3) == ")" {
            forcedCase = letter == "i"
            index += 4
        }
        let tree = try alternatives(depth: 0)
        guard index == scalars.count else { throw RegexError(reason: "parentheses () not balanced") }
        return (tree, forcedCase)
    }

    mutating func alternatives(depth: Int) throws(RegexError) -> RegexNode {
        guard depth <= RegexPattern.maximumNesting else { throw RegexError(reason: "regular expression is too complex") }
        var branches = [try sequence(depth: depth)]
        while peek() == "|" {
            index += 1
            branches.append(try sequence(depth: depth))
        }
        return branches.count == 1 ? branches[0] : .alternatives(branches)
    }

    mutating func sequence(depth: Int) throws(RegexError) -> RegexNode {
        var items: [RegexNode] = []
        while let scalar = peek(), scalar != "|", scalar != ")" {
            var atom = try self.atom(depth: depth)
            if let (minimum, maximum) = try quantifier() {
                if case .assertion = atom { throw RegexError(reason: "quantifier operand invalid") }
                atom = .repetition(atom, minimum: minimum, maximum: maximum)
                if peek() == "?" { index += 1 }  // Non-greedy: the same for a yes/no match.
                if try quantifier() != nil { throw RegexError(reason: "quantifier operand invalid") }
            }
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    /// `*`, `+`, `?` or a `{…}` bound at the current position, consumed.
    mutating func quantifier() throws(RegexError) -> (Int, Int?)? {
        switch peek() {
        case "*":
            index += 1
            return (0, nil)
        case "+":
            index += 1
            return (1, nil)
        case "?":
            index += 1
            return (0, 1)
        case "{" where isDigit(peek(1)):
            index += 1
            let minimum = number()
            var maximum: Int? = minimum
            if peek() == "," {
                index += 1
                maximum = isDigit(peek()) ? number() : nil
            }
            guard peek() == "}" else { throw RegexError(reason: "braces {} not balanced") }
            index += 1
            guard minimum <= RegexPattern.maximumRepetition, (maximum ?? minimum) <= RegexPattern.maximumRepetition,
                minimum <= (maximum ?? minimum)
            else { throw RegexError(reason: "invalid repetition count(s)") }
            return (minimum, maximum)
        default:
            return nil
        }
    }

    func isDigit(_ scalar: Unicode.Scalar?) -> Bool { scalar.map { (48...57).contains($0.value) } ?? false }

    mutating func number() -> Int {
        var value = 0
        while let scalar = peek(), isDigit(scalar) {
            value = min(value * 10 + Int(scalar.value - 48), 100_000)
            index += 1
        }
        return value
    }

    mutating func atom(depth: Int) throws(RegexError) -> RegexNode {
        guard let scalar = peek() else { throw RegexError(reason: "parentheses () not balanced") }
        index += 1
        switch scalar {
        case "(":
            if peek() == "?" {
                guard peek(1) == ":" else { throw RegexError(reason: "lookaround constraints and embedded options are not supported") }
                index += 2
            }
            let inner = try alternatives(depth: depth + 1)
            guard peek() == ")" else { throw RegexError(reason: "parentheses () not balanced") }
            index += 1
            return inner
        case "[": return .set(try bracket())
        case ".": return .any
        case "^": return .assertion(.textStart)
        case "$": return .assertion(.textEnd)
        case "\\": return try escape()
        case "*", "+", "?": throw RegexError(reason: "quantifier operand invalid")
        case "{" where isDigit(peek()): throw RegexError(reason: "quantifier operand invalid")
        default: return .scalar(scalar)
        }
    }

    mutating func escape() throws(RegexError) -> RegexNode {
        guard let scalar = peek() else { throw RegexError(reason: "invalid escape \\ sequence") }
        index += 1
        switch scalar {
        case "d": return .set(ScalarSet(classes: [.digit]))
        case "D": return .set(ScalarSet(classes: [.digit], negated: true))
        case "s": return .set(ScalarSet(classes: [.space]))
        case "S": return .set(ScalarSet(classes: [.space], negated: true))
        case "w": return .set(ScalarSet(classes: [.word]))
        case "W": return .set(ScalarSet(classes: [.word], negated: true))
        case "A": return .assertion(.textStart)
        case "Z": return .assertion(.textEnd)
        case "m": return .assertion(.wordStart)
        case "M": return .assertion(.wordEnd)
        case "y": return .assertion(.wordBoundary)
        case "Y": return .assertion(.notWordBoundary)
        case "1"..."9": throw RegexError(reason: "back-references are not supported")
        default: return .scalar(try literalEscape(scalar))
        }
    }

    /// The character an escape stands for (after the backslash and `scalar`).
    mutating func literalEscape(_ scalar: Unicode.Scalar) throws(RegexError) -> Unicode.Scalar {
        switch scalar {
        case "a": return "\u{07}"
        case "b": return "\u{08}"
        case "e": return "\u{1B}"
        case "f": return "\u{0C}"
        case "n": return "\n"
        case "r": return "\r"
        case "t": return "\t"
        case "v": return "\u{0B}"
        case "x", "u":
            var value: UInt32 = 0
            var count = 0
            let limit = scalar == "u" ? 4 : 8
            while count < limit, let digit = peek(), digit.isASCII, let hex = UInt32(String(digit), radix: 16) {
                value = value << 4 | hex
                count += 1
                index += 1
            }
            guard count > 0, let result = Unicode.Scalar(value) else { throw RegexError(reason: "invalid escape \\ sequence") }
            return result
        default:
            guard !scalar.properties.isAlphabetic, !isDigit(scalar) else {
                throw RegexError(reason: "invalid escape \\ sequence")
            }
            return scalar
        }
    }

    /// After `[`: up to and including the closing `]`.
    mutating func bracket() throws(RegexError) -> ScalarSet {
        var set = ScalarSet()
        if peek() == "^" {
            set.negated = true
            index += 1
        }
        var first = true
        while true {
            guard let scalar = peek() else { throw RegexError(reason: "brackets [] not balanced") }
            if scalar == "]", !first {
                index += 1
                return set
            }
            first = false
            if scalar == "[", peek(1) == ":" {
                index += 2
                var name = ""
                while let letter = peek(), letter != ":" {
                    name.unicodeScalars.append(letter)
                    index += 1
                }
                guard peek() == ":", peek(1) == "]", let posixClass = ScalarSet.PosixClass(rawValue: name) else {
                    throw RegexError(reason: "invalid character class")
                }
                index += 2
                set.classes.append(posixClass)
                continue
            }
            if scalar == "[", peek(1) == "." || peek(1) == "=" {
                throw RegexError(reason: "collating elements and equivalence classes are not supported")
            }
            guard let low = try bracketMember(&set) else { continue }
            if peek() == "-", let after = peek(1), after != "]" {
                index += 1
                guard let high = try bracketMember(&set), low.value <= high.value else {
                    throw RegexError(reason: "invalid character range")
                }
                set.ranges.append(low.value...high.value)
            } else {
                set.ranges.append(low.value...low.value)
            }
        }
    }

    /// One character of a bracket expression; nil when it was a class escape (`\d`…), added to `set`.
    mutating func bracketMember(_ set: inout ScalarSet) throws(RegexError) -> Unicode.Scalar? {
        guard let scalar = peek() else { throw RegexError(reason: "brackets [] not balanced") }
        index += 1
        guard scalar == "\\" else { return scalar }
        guard let escaped = peek() else { throw RegexError(reason: "brackets [] not balanced") }
        index += 1
        switch escaped {
        case "d": set.classes.append(.digit)
        case "s": set.classes.append(.space)
        case "w": set.classes.append(.word)
        case "D": set.complementedClasses.append(.digit)
        case "S": set.complementedClasses.append(.space)
        case "W": set.complementedClasses.append(.word)
        default: return try literalEscape(escaped)
        }
        return nil
    }
}

private struct RegexCompiler {
    let caseInsensitive: Bool
    var program: [RegexPattern.Instruction] = []

    mutating func append(_ instruction: RegexPattern.Instruction) throws(RegexError) {
        guard program.count < RegexPattern.maximumProgramSize else { throw RegexError(reason: "regular expression is too complex") }
        program.append(instruction)
    }

    mutating func emit(_ node: RegexNode) throws(RegexError) {
        switch node {
        case .scalar(let scalar): try append(.scalar(caseInsensitive ? LikePattern.folded(scalar) : scalar))
        case .any: try append(.any)
        case .set(let set): try append(.set(set))
        case .assertion(let assertion): try append(.assertion(assertion))
        case .sequence(let items):
            for item in items { try emit(item) }
        case .alternatives(let branches):
            var jumpsToEnd: [Int] = []
            for (offset, branch) in branches.enumerated() {
                if offset < branches.count - 1 {
                    let split = program.count
                    try append(.split(split + 1, -1))
                    try emit(branch)
                    jumpsToEnd.append(program.count)
                    try append(.jump(-1))
                    program[split] = .split(split + 1, program.count)
                } else {
                    try emit(branch)
                }
            }
            for jump in jumpsToEnd { program[jump] = .jump(program.count) }
        case .repetition(let inner, let minimum, let maximum):
            for _ in 0..<minimum { try emit(inner) }
            guard let maximum else {
                // inner*: loop back through a split.
                let split = program.count
                try append(.split(split + 1, -1))
                try emit(inner)
                try append(.jump(split))
                program[split] = .split(split + 1, program.count)
                return
            }
            // Optional copies, each skippable to the end.
            var splits: [Int] = []
            for _ in minimum..<maximum {
                splits.append(program.count)
                try append(.split(program.count + 1, -1))
                try emit(inner)
            }
            for split in splits { program[split] = .split(split + 1, program.count) }
        }
    }
}
