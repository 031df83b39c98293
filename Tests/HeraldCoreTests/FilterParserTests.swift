import Testing

@testable import HeraldCore

/// The syntax phase, mostly upstream's own `subscriptions_test.exs` parsing cases.
@Suite struct FilterParserTests {
    func parse(_ text: String) throws -> [FilterCondition] { try FilterParser.parse(text) }

    func error(_ text: String) -> String? {
        do {
            _ = try FilterParser.parse(text)
            return nil
        } catch {
            return error.message
        }
    }

    @Test func singleCondition() throws {
        #expect(try parse("id=eq.5") == [FilterCondition(column: "id", op: .eq, value: "5")])
    }

    @Test func emptyOrBlankFilterHasNoConditions() throws {
        #expect(try parse("").isEmpty)
        #expect(try parse("   ").isEmpty)
        #expect(try parse("\u{00A0}\t\n").isEmpty)
    }

    @Test func conditionsAreAndedInOrder() throws {
        #expect(
            try parse("id=gt.0,id=lt.100") == [
                FilterCondition(column: "id", op: .gt, value: "0"), FilterCondition(column: "id", op: .lt, value: "100"),
            ])
        #expect(
            try parse("quantity=gt.0,name=in.(red,blue)") == [
                FilterCondition(column: "quantity", op: .gt, value: "0"), FilterCondition(column: "name", op: .in, value: "{red,blue}"),
            ])
        #expect(
            try parse("name=in.(red,blue,green),status=in.(active,inactive)") == [
                FilterCondition(column: "name", op: .in, value: "{red,blue,green}"),
                FilterCondition(column: "status", op: .in, value: "{active,inactive}"),
            ])
    }

    @Test func everyOperatorAndNegation() throws {
        for op in FilterOperator.allCases where op != .in {
            #expect(try parse("c=\(op.rawValue).v") == [FilterCondition(column: "c", op: op, value: "v")])
            #expect(try parse("c=not.\(op.rawValue).v") == [FilterCondition(column: "c", op: op, value: "v", negated: true)])
        }
        #expect(try parse("status=not.in.(draft,archived)") == [FilterCondition(column: "status", op: .in, value: "{draft,archived}", negated: true)])
        #expect(try parse("details=not.like.hel%") == [FilterCondition(column: "details", op: .like, value: "hel%", negated: true)])
    }

    @Test func closingParenthesisInPlainValues() throws {
        #expect(
            try parse("a=eq.x),b=eq.y),c=eq.z") == [
                FilterCondition(column: "a", op: .eq, value: "x)"), FilterCondition(column: "b", op: .eq, value: "y)"),
                FilterCondition(column: "c", op: .eq, value: "z"),
            ])
    }

    @Test func valuesKeepQuotesAndSpecialCharactersVerbatim() throws {
        #expect(try parse(#"name=eq.O'Brien "x""#) == [FilterCondition(column: "name", op: .eq, value: #"O'Brien "x""#)])
        #expect(try parse("name=not.neq.a'b") == [FilterCondition(column: "name", op: .neq, value: "a'b", negated: true)])
        #expect(try parse("name=in.(O'Brien,Smith)") == [FilterCondition(column: "name", op: .in, value: "{O'Brien,Smith}")])
        #expect(try parse("a=eq.b=c.d") == [FilterCondition(column: "a", op: .eq, value: "b=c.d")])
    }

    @Test func postgrestQuoting() throws {
        #expect(try parse(#"name=eq."a,b""#) == [FilterCondition(column: "name", op: .eq, value: "a,b")])
        #expect(
            try parse(#"name=eq."a,b",id=gt.0"#) == [
                FilterCondition(column: "name", op: .eq, value: "a,b"), FilterCondition(column: "id", op: .gt, value: "0"),
            ])
        #expect(try parse(#"name=eq."a.b:c(d)""#) == [FilterCondition(column: "name", op: .eq, value: "a.b:c(d)")])
        #expect(try parse(#"name=eq."she said \"hi\"""#) == [FilterCondition(column: "name", op: .eq, value: #"she said "hi""#)])
        #expect(try parse(#"path=eq."C:\\tmp""#) == [FilterCondition(column: "path", op: .eq, value: #"C:\tmp"#)])
        #expect(try parse(#"path=eq."C:\new""#) == [FilterCondition(column: "path", op: .eq, value: "C:new")])
        #expect(try parse(#"name=eq."""#) == [FilterCondition(column: "name", op: .eq, value: "")])
        #expect(try parse(#"name=eq." a ""#) == [FilterCondition(column: "name", op: .eq, value: " a ")])
        #expect(try parse(#"name=not.neq."a,b""#) == [FilterCondition(column: "name", op: .neq, value: "a,b", negated: true)])
        #expect(try parse(#"name=eq."é,ü""#) == [FilterCondition(column: "name", op: .eq, value: "é,ü")])
    }

    @Test func malformedQuotingIsLiteral() throws {
        #expect(try parse(#"name=eq."unterminated"#) == [FilterCondition(column: "name", op: .eq, value: #""unterminated"#)])
        #expect(try parse(#"name=eq."ab"cd"#) == [FilterCondition(column: "name", op: .eq, value: #""ab"cd"#)])
        #expect(try parse(#"name=eq."ab\"#) == [FilterCondition(column: "name", op: .eq, value: #""ab\"#)])
        // A quote that does not start a value does not protect the comma.
        #expect(
            try parse(#"desc=eq.5" tall,id=gt.0"#) == [
                FilterCondition(column: "desc", op: .eq, value: #"5" tall"#), FilterCondition(column: "id", op: .gt, value: "0"),
            ])
    }

    @Test func inListsKeepTheirQuotesAsAnArrayLiteral() throws {
        #expect(try parse(#"tags=in.("a,b",c)"#) == [FilterCondition(column: "tags", op: .in, value: #"{"a,b",c}"#)])
        #expect(try parse(#"tags=in.("a,b","c,d")"#) == [FilterCondition(column: "tags", op: .in, value: #"{"a,b","c,d"}"#)])
        #expect(try parse("id=in.()") == [FilterCondition(column: "id", op: .in, value: "{}")])
        #expect(try parse("id=eq.5,id=in.(1,2)") == [FilterCondition(column: "id", op: .eq, value: "5"), FilterCondition(column: "id", op: .in, value: "{1,2}")])
    }

    @Test func segmentsAreTrimmedButColumnsKeepInnerSpaces() throws {
        #expect(try parse("  id=eq.1 ,  b=eq.2  ") == [FilterCondition(column: "id", op: .eq, value: "1"), FilterCondition(column: "b", op: .eq, value: "2")])
        #expect(try parse("id =eq.1") == [FilterCondition(column: "id ", op: .eq, value: "1")])
        #expect(try parse("=eq.1") == [FilterCondition(column: "", op: .eq, value: "1")])
    }

    @Test func negationPrefixIsByteWise() throws {
        // `not.` followed by a combining mark is still the prefix (upstream compares bytes, not graphemes).
        #expect(throws: FilterSyntaxError.self) { try parse("a=not.\u{301}eq.1") }
        #expect(error("a=not.\u{301}eq.1") == "Error parsing `filter` params: [\"\u{301}eq\", \"1\"]")
    }

    @Test func errorTexts() {
        #expect(error("wrong") == #"Error parsing `filter` params: ["wrong"]"#)
        #expect(error("undefined") == #"Error parsing `filter` params: ["undefined"]"#)
        #expect(error("subject=foo.hey") == #"Error parsing `filter` params: ["foo", "hey"]"#)
        #expect(error("id=gt.0,id=foo.100") == #"Error parsing `filter` params: ["foo", "100"]"#)
        #expect(error("id=eq") == #"Error parsing `filter` params: ["eq"]"#)
        #expect(error("id=not.eq") == #"Error parsing `filter` params: ["eq"]"#)
        #expect(error("id=") == #"Error parsing `filter` params: [""]"#)
        #expect(error("id=EQ.1") == #"Error parsing `filter` params: ["EQ", "1"]"#)
        #expect(error(#"id=foo."a\"b""#) == #"Error parsing `filter` params: ["foo", "\"a\\\"b\""]"#)
        #expect(error("id=in.1") == "Error parsing `filter` params: `in` filter value must be wrapped by parentheses")
        #expect(error("id=in.(1,2") == "Error parsing `filter` params: `in` filter value must be wrapped by parentheses")
        #expect(error("id=in.(") == "Error parsing `filter` params: `in` filter value must be wrapped by parentheses")
        for text in ["id=gt.0,", ",id=gt.0", "a=eq.1,,b=eq.2", "a=eq.1, ,b=eq.2"] {
            #expect(error(text) == "Error parsing `filter` params: filter must not contain empty segments (check for extra commas)")
        }
        // The first failing segment wins.
        #expect(error("a=eq.1,wrong,b=foo.1") == #"Error parsing `filter` params: ["wrong"]"#)
    }
}
