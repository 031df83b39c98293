import Testing

@testable import HeraldCore

/// The `match`/`imatch` engine (expectations checked against PostgreSQL 15's `~` and `~*`).
@Suite struct FilterRegexTests {
    func matches(_ pattern: String, _ text: String, ignoringCase: Bool = false) throws -> Bool {
        try RegexPattern(pattern, caseInsensitive: ignoringCase, operatorName: "match").matches(text)
    }

    func reason(_ pattern: String) -> String? {
        do {
            _ = try RegexPattern(pattern, caseInsensitive: false, operatorName: "match")
            return nil
        } catch {
            return error.message
        }
    }

    @Test func postgresBehaviour() throws {
        let cases: [(String, String, Bool)] = [
            ("a", "", true), ("xyz", "()", true), ("ab", "a|", true), ("a+", #"a\+"#, true), ("aa", "a??", true),
            ("a", "a+?", true), ("ab", #"\mab\M"#, true), ("a\nb", "a.b", true), ("a\nb", "a$", false), ("a\nb", "^b", false),
            ("a]", "[]a]+", true), ("-", "[a-]", true), ("x", #"\x78"#, true), ("x", #"\u0078"#, true), ("a{,2}", "a{,2}", true),
            ("a{", "a{", true), ("a", #"\b"#, false), ("a1", #"\d"#, true), ("a1_", #"^\w+$"#, true), ("\t", #"\s"#, true),
            ("5", #"[\d]"#, true), ("a", #"[^\d]"#, true), ("]", #"[\]]"#, true), ("A", "[[:upper:]]", true), ("é", "[[:alpha:]]", true),
            ("٣", #"\d"#, false), ("ab", "a{1}?b", true), ("x", "(?:x)", true), ("ab", #"a\Z"#, false), ("ab", #"\Ab"#, false),
            ("a b", #"a\yb"#, false), ("a b", #"a\y \yb"#, true), ("post-42", "^post-[0-9]{2}$", true), ("aaa", "^a{2}$", false),
            ("aaa", "^a{2,3}$", true), ("b", "^a*b$", true), ("ab", "^(a|b)+$", true), ("abc", "^(a|b)+$", false),
        ]
        for (text, pattern, expected) in cases {
            #expect(try matches(pattern, text) == expected, "\(text.debugDescription) ~ \(pattern)")
        }
    }

    @Test func caseInsensitive() throws {
        #expect(try matches("É", "é", ignoringCase: true))
        #expect(try matches("[a-z]", "Q", ignoringCase: true))
        #expect(try matches("[[:lower:]]", "B", ignoringCase: true))
        #expect(try matches("B", "b", ignoringCase: true))
        #expect(try !matches("B", "b"))
        #expect(try matches("(?i)A", "a"))
        #expect(try !matches("(?c)A", "a", ignoringCase: true))
    }

    @Test func errorsUsePostgresTexts() {
        let prefix = "invalid regular expression for match filter: invalid regular expression: "
        #expect(reason("(a") == prefix + "parentheses () not balanced")
        #expect(reason("a)") == prefix + "parentheses () not balanced")
        #expect(reason("[a") == prefix + "brackets [] not balanced")
        #expect(reason("a{2,1}") == prefix + "invalid repetition count(s)")
        #expect(reason("a{256}") == prefix + "invalid repetition count(s)")
        #expect(reason("a{1") == prefix + "braces {} not balanced")
        #expect(reason("*a") == prefix + "quantifier operand invalid")
        #expect(reason("a**") == prefix + "quantifier operand invalid")
        #expect(reason("a{1}{2}") == prefix + "quantifier operand invalid")
        #expect(reason(#"\q"#) == prefix + #"invalid escape \ sequence"#)
        #expect(reason(#"\"#) == prefix + #"invalid escape \ sequence"#)
        #expect(reason("[[:foo:]]") == prefix + "invalid character class")
        #expect(reason("[z-a]") == prefix + "invalid character range")
        #expect(reason(#"[a-\d]"#) == prefix + "invalid character range")
        // Supported by PostgreSQL, not here.
        #expect(reason(#"(a)\1"#) == prefix + "back-references are not supported")
        #expect(reason("(?=a)a") == prefix + "lookaround constraints and embedded options are not supported")
        #expect(reason(String(repeating: "(", count: 500)) == prefix + "regular expression is too complex")
        #expect(reason("(a{255}){255}") == prefix + "regular expression is too complex")
    }

    /// Patterns that make backtracking engines exponential run in linear time here.
    @Test func pathologicalPatternsStayLinear() throws {
        let text = String(repeating: "a", count: 20_000)
        let patterns = try ["(a|a)*b", "(a+)+$x", "^(a*)*b$"].map { try RegexPattern($0, caseInsensitive: false, operatorName: "match") }
        let elapsed = ContinuousClock().measure {
            for pattern in patterns { #expect(!pattern.matches(text)) }
        }
        #expect(elapsed < .seconds(60))  // exponential backtracking would take years; only that fails
    }
}
