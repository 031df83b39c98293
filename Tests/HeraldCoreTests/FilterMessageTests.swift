import Testing

@testable import HeraldCore

/// Elixir `inspect` rendering and the subscription failure texts. Expected layouts were produced by Elixir
/// itself (`inspect(term, pretty: true)`), except where noted.
@Suite struct FilterMessageTests {
    func strings(_ values: String...) -> ElixirInspect.Term { .list(values.map { .string($0) }) }

    func filter(_ column: String, _ op: FilterOperator, _ value: String, negated: Bool = false) -> FilterCondition {
        FilterCondition(column: column, op: op, value: value, negated: negated)
    }

    @Test func inspectsStrings() {
        #expect(ElixirInspect.inspect(strings("foo", "hey")) == #"["foo", "hey"]"#)
        #expect(ElixirInspect.inspect(strings("a\"b\\c#{x}\n\té\u{7F}\u{1B}\u{7}")) == ##"["a\"b\\c\#{x}\n\té\d\e\a"]"##)
        #expect(ElixirInspect.inspect(strings("zero\u{200B}width\u{FEFF}")) == #"["zero\u200Bwidth\uFEFF"]"#)
        #expect(ElixirInspect.inspect(.list([])) == "[]")
        #expect(ElixirInspect.inspect(.nilAtom) == "nil")
    }

    @Test func nonPrintableStringsAreShownAsBytes() {
        #expect(ElixirInspect.inspect(strings("a\u{1}", "b")) == #"[<<97, 1>>, "b"]"#)
        #expect(ElixirInspect.inspect(strings("\u{85}")) == "[<<194, 133>>]")
    }

    @Test func longStringsAreCutAtTheirPrintableLimit() {
        let text = ElixirInspect.inspect(strings("x" + String(repeating: "é", count: 5000)))
        #expect(text.hasSuffix(String(repeating: "é", count: 11) + #"" <> ...]"#))
        #expect(text.unicodeScalars.count == 4096 + #"["" <> ...]"#.unicodeScalars.count)
    }

    @Test func prettyListsOfFilterTuples() {
        func pretty(_ filters: [FilterCondition]) -> String {
            SubscriptionErrorMessage.connectParameters(event: nil, schema: "s", table: "t", filters: filters, select: nil)
        }
        #expect(pretty([]) == "event: *, schema: s, table: t, filters: [], select: nil")
        #expect(pretty([filter("notacolumn", .eq, "123")]).contains(#"filters: [{"notacolumn", "eq", "123", false}], select"#))
        let two = [filter("aaaaaaaaaaaaaaaaaaaa", .eq, "1"), filter("bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", .eq, "2")]
        #expect(
            pretty(two).contains(
                """
                filters: [
                  {"aaaaaaaaaaaaaaaaaaaa", "eq", "1", false},
                  {"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "eq", "2", false}
                ], select
                """))
        let c70 = String(repeating: "c", count: 70)
        #expect(
            pretty([filter(c70, .eq, "x")]).contains(
                """
                [
                  {"\(c70)",
                   "eq", "x", false}
                ]
                """))
        let v100 = String(repeating: "v", count: 100)
        #expect(
            pretty([filter("id", .eq, v100, negated: true), filter("a", .in, "{1,2}")]).contains(
                """
                [
                  {"id", "eq",
                   "\(v100)",
                   true},
                  {"a", "in", "{1,2}", false}
                ]
                """))
        #expect(pretty([filter("c", .eq, "x\u{1}\u{2}\u{3}")]).contains(#"[{"c", "eq", <<120, 1, 2, 3>>, false}]"#))
    }

    @Test func prettyFlexListOfColumns() {
        let columns = (1...30).map { "column_\($0)" }
        #expect(
            ElixirInspect.inspect(.list(columns.map { .string($0) }), pretty: true) == """
                ["column_1", "column_2", "column_3", "column_4", "column_5", "column_6",
                 "column_7", "column_8", "column_9", "column_10", "column_11", "column_12",
                 "column_13", "column_14", "column_15", "column_16", "column_17", "column_18",
                 "column_19", "column_20", "column_21", "column_22", "column_23", "column_24",
                 "column_25", "column_26", "column_27", "column_28", "column_29", "column_30"]
                """)
    }

    /// Elixir 1.19's default `limit: 50` is shared with nested terms: each filter tuple uses 5, so an 11th
    /// filter shows as `...` (derived from the 1.19 sources; older Elixir counted differently).
    @Test func elementLimitCutsLongFilterLists() {
        let filters = (1...12).map { filter("c\($0)", .eq, "\($0)") }
        let text = SubscriptionErrorMessage.connectParameters(event: nil, schema: "s", table: "t", filters: filters, select: nil)
        #expect(text.contains("  {\"c10\", \"eq\", \"10\", false},\n  ...\n], select: nil"))
        #expect(!text.contains("c11"))
    }

    @Test func systemMessageTexts() {
        #expect(
            SubscriptionErrorMessage.notEnabled(event: nil, schema: "public", table: "doesnotexist", filters: [])
                == "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the given connect parameters: [event: *, schema: public, table: doesnotexist, filters: [], select: nil]"
        )
        #expect(
            SubscriptionErrorMessage.exception(
                event: nil, schema: "public", table: "test", filters: [filter("notacolumn", .eq, "123")],
                error: .raise("invalid column for filter notacolumn"))
                == "Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: [event: *, schema: public, table: test, filters: [{\"notacolumn\", \"eq\", \"123\", false}], select: nil]. Exception: ERROR P0001 (raise_exception) invalid column for filter notacolumn"
        )
        #expect(
            SubscriptionErrorMessage.exception(
                event: .insert, schema: "public", table: "test", filters: [filter("id", .eq, "hey")], select: ["id", "title"],
                error: .invalidSyntax(type: "integer", input: "hey"))
                == "Unable to subscribe to changes with given parameters. An exception happened so please check your connect parameters: [event: INSERT, schema: public, table: test, filters: [{\"id\", \"eq\", \"hey\", false}], select: [\"id\", \"title\"]]. Exception: ERROR 22P02 (invalid_text_representation) invalid input syntax for type integer: \"hey\""
        )
    }

    @Test func exceptionTextCarriesTheDetail() {
        let error = FilterBindingError.invalidText("malformed array literal: \"{a\"", detail: "Unexpected end of input.")
        #expect(error.exceptionText == "ERROR 22P02 (invalid_text_representation) malformed array literal: \"{a\"\n\nUnexpected end of input.")
    }
}
