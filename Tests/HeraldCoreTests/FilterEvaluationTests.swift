import Testing

@testable import HeraldCore

/// Evaluating bound filters against `to_jsonb(row)` images, with PostgreSQL's semantics.
@Suite struct FilterEvaluationTests {
    static let columns = [
        Column(name: "id", type: "int4"), Column(name: "big", type: "int8"), Column(name: "details", type: "text"),
        Column(name: "flag", type: "bool"), Column(name: "price", type: "numeric"), Column(name: "ratio", type: "float8"),
        Column(name: "room_id", type: "uuid"), Column(name: "at", type: "timestamptz"), Column(name: "ts", type: "timestamp"),
        Column(name: "day", type: "date"), Column(name: "tags", type: "_text"), Column(name: "meta", type: "jsonb"),
        Column(name: "code", type: "bpchar"), Column(name: "nick", type: "citext"), Column(name: "mood", type: "mood"),
        Column(name: "grid", type: "_int4"), Column(name: "blob", type: "bytea"), Column(name: "clock", type: "time"),
    ]

    func visible(_ filter: String, _ row: JSONObject) throws -> Bool {
        try BoundFilter(FilterParser.parse(filter), columns: Self.columns).matches(row)
    }

    @Test func comparisons() throws {
        let row: JSONObject = ["id": 5]
        for (filter, expected) in [
            ("id=eq.5", true), ("id=eq.6", false), ("id=neq.5", false), ("id=neq.6", true), ("id=lt.6", true), ("id=lt.5", false),
            ("id=lte.5", true), ("id=gt.4", true), ("id=gt.5", false), ("id=gte.5", true), ("id=not.eq.5", false),
            ("id=not.gt.5", true), ("id=eq. 5 ", true), ("id=gt.0,id=lt.10", true), ("id=gt.0,id=lt.5", false),
        ] {
            #expect(try visible(filter, row) == expected, "\(filter)")
        }
    }

    @Test func nullIsUnknownAndUnknownIsNotVisible() throws {
        let row: JSONObject = ["id": nil, "flag": nil]
        for filter in ["id=eq.5", "id=not.eq.5", "id=neq.5", "id=not.neq.5", "id=lt.5", "id=not.lt.5", "id=in.(5)", "id=not.in.(5)"] {
            #expect(try !visible(filter, row), "\(filter)")
        }
        #expect(try visible("id=is.null", row))
        #expect(try !visible("id=not.is.null", row))
        #expect(try visible("id=isdistinct.5", row))
        #expect(try !visible("id=not.isdistinct.5", row))
        #expect(try !visible("flag=is.true", row))
        #expect(try visible("flag=not.is.true", row))
        #expect(try visible("flag=not.is.false", row))
        #expect(try visible("flag=is.unknown", row))
        #expect(try !visible("flag=not.is.unknown", row))
    }

    @Test func isAndIsDistinctOnValues() throws {
        #expect(try visible("flag=is.true", ["flag": true]))
        #expect(try !visible("flag=is.false", ["flag": true]))
        #expect(try visible("flag=not.is.false", ["flag": true]))
        #expect(try !visible("flag=is.unknown", ["flag": false]))
        #expect(try !visible("id=is.null", ["id": 0]))
        #expect(try visible("id=not.is.null", ["id": 0]))
        #expect(try !visible("id=isdistinct.5", ["id": 5]))
        #expect(try visible("id=isdistinct.6", ["id": 5]))
        #expect(try visible("id=not.isdistinct.5", ["id": 5]))
        #expect(try visible("flag=eq.t", ["flag": true]))
        #expect(try visible("flag=lt.true", ["flag": false]))
    }

    @Test func missingColumnIsNeverVisible() throws {
        let row: JSONObject = ["id": 1]
        for filter in ["details=eq.x", "details=is.null", "details=not.is.null", "details=isdistinct.x", "details=not.in.()", "id=eq.1,details=neq.x"] {
            #expect(try !visible(filter, row), "\(filter)")
        }
        #expect(try visible("", row))
        #expect(BoundFilter.matchAll.matches([:]))
    }

    @Test func inIsEqualsAny() throws {
        #expect(try visible("id=in.(1,5,9)", ["id": 5]))
        #expect(try !visible("id=in.(1,9)", ["id": 5]))
        #expect(try visible("id=not.in.(1,9)", ["id": 5]))
        #expect(try visible("id=in.( 1 , 5 )", ["id": 5]))
        // A NULL in the list makes a miss unknown.
        #expect(try visible("id=in.(5,NULL)", ["id": 5]))
        #expect(try !visible("id=in.(1,NULL)", ["id": 5]))
        #expect(try !visible("id=not.in.(1,NULL)", ["id": 5]))
        // An empty list is false even for NULL, so its negation is true even for NULL.
        #expect(try !visible("id=in.()", ["id": 5]))
        #expect(try visible("id=not.in.()", ["id": nil]))
        #expect(try visible(#"details=in.("a,b",c)"#, ["details": "a,b"]))
        #expect(try !visible(#"details=in.("a,b",c)"#, ["details": "a"]))
        #expect(try visible(#"details=in.("NULL")"#, ["details": "NULL"]))
        #expect(try visible("details=in.(O'Brien,Smith)", ["details": "O'Brien"]))
    }

    @Test func likeAndIlike() throws {
        let row: JSONObject = ["details": "Hello world"]
        for (filter, expected) in [
            ("details=like.Hello%", true), ("details=like.hello%", false), ("details=ilike.hello%", true), ("details=like.%world", true),
            ("details=like.%lo w%", true), ("details=like.H_llo world", true), ("details=like.H_llo", false), ("details=like.%", true),
            ("details=like.Hello world", true), ("details=like.Hello worl", false), ("details=not.like.bye%", true),
            ("details=like.%o%o%", true), ("details=like.%o%o%o%", false), ("details=ilike.%WORLD", true),
        ] {
            #expect(try visible(filter, row) == expected, "\(filter)")
        }
        #expect(try visible(#"details=like.100\%"#, ["details": "100%"]))
        #expect(try !visible(#"details=like.100\%"#, ["details": "1000"]))
        #expect(try visible(#"details=like.a\_b"#, ["details": "a_b"]))
        #expect(try !visible(#"details=like.a\_b"#, ["details": "axb"]))
        #expect(try visible("details=like.é_", ["details": "éü"]))
        #expect(try visible("details=ilike.ÉÜ", ["details": "éü"]))
        #expect(try !visible("details=like.%", ["details": nil]))
        #expect(try !visible("details=not.like.x%", ["details": nil]))
        #expect(try visible("details=like.", ["details": ""]))
    }

    @Test func regularExpressions() throws {
        let row: JSONObject = ["details": "post-42\nnext"]
        #expect(try visible("details=match.^post-", row))
        #expect(try visible("details=match.[0-9]+", row))
        #expect(try !visible("details=match.^POST", row))
        #expect(try visible("details=imatch.^POST", row))
        #expect(try visible("details=match.42.next", row))
        #expect(try !visible("details=match.^next", row))
        #expect(try visible("details=not.match.^x", row))
        #expect(try visible("details=match.[[:digit:]]{2}", row))
        #expect(try !visible("details=match.x", ["details": nil]))
    }

    @Test func numericComparesExactly() throws {
        let row: JSONObject = ["price": .number("12345678901234567890.123")]
        #expect(try visible("price=eq.12345678901234567890.123", row))
        #expect(try visible("price=eq.12345678901234567890.1230", row))
        #expect(try !visible("price=eq.12345678901234567890.124", row))
        #expect(try visible("price=lt.12345678901234567890.124", row))
        #expect(try visible("price=in.(1,12345678901234567890.123)", row))
        #expect(try visible("price=eq.NaN", ["price": "NaN"]))
        #expect(try visible("price=gt.1e300", ["price": "Infinity"]))
    }

    @Test func floats() throws {
        #expect(try visible("ratio=eq.0.5", ["ratio": .number("0.5")]))
        #expect(try visible("ratio=eq.NaN", ["ratio": "NaN"]))
        #expect(try visible("ratio=gt.1e308", ["ratio": "NaN"]))
        #expect(try visible("ratio=lt.0", ["ratio": "-Infinity"]))
        #expect(try visible("ratio=eq.0", ["ratio": .number("-0")]))
        #expect(try visible("big=gt.9007199254740992", ["big": .number("9007199254740993")]))
    }

    @Test func uuidsIgnoreCase() throws {
        let row: JSONObject = ["room_id": "6f9619ff-8b86-d011-b42d-00cf4fc964ff"]
        #expect(try visible("room_id=eq.6F9619FF-8B86-D011-B42D-00CF4FC964FF", row))
        #expect(try visible("room_id=eq.{6f9619ff8b86d011b42d00cf4fc964ff}", row))
        #expect(try visible("room_id=gt.00000000-0000-0000-0000-000000000000", row))
        #expect(try !visible("room_id=eq.6f9619ff-8b86-d011-b42d-00cf4fc96400", row))
    }

    @Test func timesCompareAsTime() throws {
        let row: JSONObject = [
            "at": "2026-01-01T10:00:00.5+00:00", "ts": "2026-01-01T10:00:00", "day": "2026-01-01", "clock": "10:00:00.5",
        ]
        #expect(try visible("at=eq.2026-01-01T11:00:00.5+01:00", row))
        #expect(try visible("at=gt.2026-01-01T10:00:00Z", row))
        #expect(try visible("at=lt.2026-01-01T05:00:01-05", row))
        #expect(try visible("ts=eq.2026-01-01 10:00", row))
        #expect(try visible("ts=lt.2026-01-01T10:00:00.000001", row))
        #expect(try visible("day=eq.20260101", row))
        #expect(try visible("day=gte.2025-12-31,day=lt.infinity", row))
        #expect(try visible("clock=gt.10:00", row))
        #expect(try visible("at=gt.2026-01-01T09:00:00.123456789Z", ["at": "2026-01-01T09:00:00.123457+00:00"]) == false)
        #expect(try visible("at=eq.infinity", ["at": "infinity"]))
    }

    @Test func textTypes() throws {
        #expect(try visible("code=eq.a", ["code": "a  "]))
        #expect(try !visible("code=like.a", ["code": "a  "]))
        #expect(try visible("code=like.a%", ["code": "a  "]))
        #expect(try visible("code=like.a_ ", ["code": "ab"]))
        #expect(try visible("nick=eq.ALICE", ["nick": "Alice"]))
        #expect(try visible("nick=like.al%", ["nick": "ALICE"]))
        #expect(try visible("nick=match.^al", ["nick": "ALICE"]))
        #expect(try visible("details=gt.z", ["details": "é"]))
        #expect(try visible("details=lt.b", ["details": "ab"]))
        #expect(try !visible("details=eq.e\u{301}", ["details": "\u{E9}"]))
        #expect(try visible("mood=eq.happy", ["mood": "happy"]))
        #expect(try !visible("mood=eq.Happy", ["mood": "happy"]))
        #expect(try visible("mood=in.(sad,happy)", ["mood": "happy"]))
        #expect(try visible("blob=eq.\\x0102", ["blob": "\\x0102"]))
    }

    @Test func arraysAndJSON() throws {
        #expect(try visible(#"tags=eq."{a,b}""#, ["tags": ["a", "b"]]))
        #expect(try !visible(#"tags=eq."{a,b}""#, ["tags": ["b", "a"]]))
        #expect(try visible(#"tags=eq."{}""#, ["tags": []]))
        #expect(try visible(#"tags=eq."{a,NULL}""#, ["tags": ["a", nil]]))
        #expect(try visible(#"grid=eq."{{1,2},{3,4}}""#, ["grid": [[1, 2], [3, 4]]]))
        #expect(try visible(#"grid=gt."{1,2}""#, ["grid": [1, 2, 0]]))
        #expect(try !visible(#"grid=eq."{1,2}""#, ["grid": [[1, 2], [3]]]))
        #expect(try visible(#"meta=eq."{\"a\":1.0,\"b\":[1]}""#, ["meta": ["b": [1], "a": 1]]))
        // PostgREST quotes are stripped, so a JSON string needs escaped quotes of its own.
        #expect(try visible(#"meta=eq."\"abc\"""#, ["meta": "abc"]))
        #expect(try !visible(#"meta=eq.{"a":1}"#, ["meta": ["a": "1"]]))
        #expect(try visible(#"meta=neq.{"a":1}"#, ["meta": ["a": "1"]]))
    }

    @Test func malformedRowValuesAreNotVisible() throws {
        for filter in ["id=eq.1", "id=not.eq.1", "id=isdistinct.1", "id=not.in.(1)", "id=neq.1"] {
            #expect(try !visible(filter, ["id": "abc"]), "\(filter)")
        }
        #expect(try visible("id=eq.1", ["id": "1"]))
        #expect(try !visible("details=like.%", ["details": 5]))
        #expect(try !visible(#"grid=eq."{1}""#, ["grid": [[1], 2]]))
    }

    /// Random single-column filters over int4 against a direct three-valued-logic model.
    @Test func randomizedAgainstThreeValuedModel() throws {
        var random = SplitMixRandom(seed: 0x5EED)
        let columns = [Column(name: "a", type: "int4"), Column(name: "b", type: "int4")]
        let ops: [FilterOperator] = [.eq, .neq, .lt, .lte, .gt, .gte, .in, .isdistinct, .is]
        for _ in 0..<2_000 {
            var parts: [String] = []
            var model: [(column: String, test: (Int?) -> Bool?, negated: Bool)] = []
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let column = Bool.random(using: &random) ? "a" : "b"
                let op = ops.randomElement(using: &random)!
                let negated = Int.random(in: 0..<3, using: &random) == 0
                let value = Int.random(in: -2...2, using: &random)
                let text: String
                let test: (Int?) -> Bool?
                switch op {
                case .in:
                    let list: [Int?] = (0..<Int.random(in: 0...3, using: &random)).map { _ in
                        Int.random(in: 0..<5, using: &random) == 0 ? nil : Int.random(in: -2...2, using: &random)
                    }
                    text = "(" + list.map { $0.map(String.init) ?? "NULL" }.joined(separator: ",") + ")"
                    test = { row in
                        if list.isEmpty { return false }
                        guard let row else { return nil }
                        if list.contains(row) { return true }
                        return list.contains(nil) ? nil : false
                    }
                case .is:
                    text = "null"
                    test = { $0 == nil }
                case .isdistinct:
                    text = String(value)
                    test = { $0 != value }
                default:
                    text = String(value)
                    let compare: (Int, Int) -> Bool =
                        switch op {
                        case .eq: (==)
                        case .neq: (!=)
                        case .lt: (<)
                        case .lte: (<=)
                        case .gt: (>)
                        default: (>=)
                        }
                    test = { row in row.map { compare($0, value) } }
                }
                parts.append("\(column)=\(negated ? "not." : "")\(op.rawValue).\(text)")
                model.append((column, test, negated))
            }
            let filter = try BoundFilter(FilterParser.parse(parts.joined(separator: ",")), columns: columns)
            for _ in 0..<4 {
                var row = JSONObject()
                var values: [String: Int?] = [:]
                for column in ["a", "b"] {
                    switch Int.random(in: 0..<7, using: &random) {
                    case 0: break
                    case 1:
                        row[column] = .null
                        values[column] = .some(nil)
                    default:
                        let value = Int.random(in: -2...2, using: &random)
                        row[column] = .int(value)
                        values[column] = .some(value)
                    }
                }
                let expected = model.allSatisfy { condition in
                    guard let value = values[condition.column] else { return false }
                    guard let result = condition.test(value) else { return false }
                    return result != condition.negated
                }
                #expect(filter.matches(row) == expected, "\(parts) on \(row)")
            }
        }
    }
}
