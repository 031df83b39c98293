import Testing

@testable import HeraldCore

/// PostgreSQL input semantics and error texts (expectations checked against PostgreSQL 15).
@Suite struct FilterValueInputTests {
    func read(_ text: String, _ type: ScalarType) throws -> FilterValue { try ValueInput.read(text, as: type) }

    func failure(_ text: String, _ type: ScalarType) -> FilterBindingError? {
        do {
            _ = try ValueInput.read(text, as: type)
            return nil
        } catch {
            return error
        }
    }

    func same(_ a: String, _ b: String, _ type: ScalarType) throws -> Bool { try read(a, type) == read(b, type) }

    func less(_ a: String, _ b: String, _ type: ScalarType) throws -> Bool { try read(a, type).compare(read(b, type)) < 0 }

    @Test func integers() throws {
        #expect(try read(" 12 ", .int4) == .integer(12))
        #expect(try read("+5", .int2) == .integer(5))
        #expect(try read("-9223372036854775808", .int8) == .integer(.min))
        #expect(failure("1.0", .int4) == .invalidSyntax(type: "integer", input: "1.0"))
        #expect(failure("1_000", .int4)?.message == #"invalid input syntax for type integer: "1_000""#)
        #expect(failure("", .int4)?.message == #"invalid input syntax for type integer: """#)
        #expect(failure("- 5", .int8)?.message == #"invalid input syntax for type bigint: "- 5""#)
        #expect(failure("x", .int2)?.message == #"invalid input syntax for type smallint: "x""#)
        #expect(failure("99999999999", .int4)?.message == #"value "99999999999" is out of range for type integer"#)
        #expect(failure("99999999999", .int4)?.sqlState == "22003")
        #expect(failure("40000", .int2)?.message == #"value "40000" is out of range for type smallint"#)
        #expect(failure("9223372036854775808", .int8)?.message == #"value "9223372036854775808" is out of range for type bigint"#)
        #expect(try read("-1", .oid) == .integer(4_294_967_295))
        #expect(failure("99999999999", .oid)?.message == #"value "99999999999" is out of range for type oid"#)
    }

    @Test func floats() throws {
        #expect(try same("NaN", " nan ", .float8))
        #expect(try less("Infinity", "NaN", .float8))
        #expect(try less("-inf", "-1e308", .float8))
        #expect(try same("-0", "0", .float8))
        #expect(try read("0x10", .float8) == .float(16))
        #expect(try same("0.1", "0.1000000001", .float4))
        #expect(try !same("0.1", "0.1000000001", .float8))
        #expect(failure("1e400", .float8)?.message == #""1e400" is out of range for type double precision"#)
        #expect(failure("1e-400", .float8)?.message == #""1e-400" is out of range for type double precision"#)
        #expect(failure("1e40", .float4)?.message == #""1e40" is out of range for type real"#)
        #expect(failure("1e-50", .float4)?.message == #""1e-50" is out of range for type real"#)
        #expect(failure("x", .float8)?.message == #"invalid input syntax for type double precision: "x""#)
        #expect(failure("x", .float4)?.message == #"invalid input syntax for type real: "x""#)
    }

    @Test func numericIsExact() throws {
        #expect(try same("  +.5e1  ", "5", .numeric))
        #expect(try same("1.50", "1.5", .numeric))
        #expect(try same("0.000", "-0", .numeric))
        #expect(try same("100", "1e2", .numeric))
        #expect(try less("12345678901234567890.123", "12345678901234567890.124", .numeric))
        #expect(try less("-12345678901234567890.124", "-12345678901234567890.123", .numeric))
        #expect(try less("0.000000000000000000001", "0.00000000000000000001", .numeric))
        #expect(try less("-1", "0", .numeric))
        #expect(try less("0", "0.0001", .numeric))
        #expect(try less("99", "100", .numeric))
        #expect(try less("1e10", "inf", .numeric))
        #expect(try less("Infinity", "NaN", .numeric))
        #expect(try less("-Infinity", "-1e100", .numeric))
        #expect(try same("NaN", "nan", .numeric))
        #expect(failure("-NaN", .numeric)?.message == #"invalid input syntax for type numeric: "-NaN""#)
        #expect(failure("x", .numeric)?.message == #"invalid input syntax for type numeric: "x""#)
        #expect(failure("1e", .numeric) != nil)
        #expect(failure("1.2.3", .numeric) != nil)
    }

    @Test func booleans() throws {
        for text in ["t", "tr", "TRUE", " TrU ", "y", "yes", "on", "1"] { #expect(try read(text, .bool) == .bool(true), "\(text)") }
        for text in ["f", "fal", "false", "n", "no", "of", "off", "0"] { #expect(try read(text, .bool) == .bool(false), "\(text)") }
        for text in ["o", "", "is", "2", "yess"] {
            #expect(failure(text, .bool)?.message == "invalid input syntax for type boolean: \"\(text)\"")
        }
        #expect(try less("false", "true", .bool))
    }

    @Test func uuids() throws {
        let canonical = "12345678-1234-1234-1234-123456789abc"
        for text in [
            "{12345678-1234-1234-1234-123456789abc}", "1234-5678-1234-1234-1234-1234-5678-9abc", "12345678123412341234123456789ABC",
        ] {
            #expect(try same(text, canonical, .uuid), "\(text)")
        }
        for text in ["x", "{}", "12345678-1234-1234-1234-123456789ab", "12345678-1234-1234-1234-123456789abc-", " \(canonical)", "-\(canonical)"] {
            #expect(failure(text, .uuid)?.message == "invalid input syntax for type uuid: \"\(text)\"", "\(text)")
        }
        #expect(try less("00000000-0000-0000-0000-000000000001", "80000000-0000-0000-0000-000000000000", .uuid))
        #expect(try less("00000000-0000-0000-0000-00000000000f", "00000000-0000-0000-0001-000000000000", .uuid))
    }

    @Test func dates() throws {
        #expect(try same("20260101", "2026-01-01", .date))
        #expect(try same(" 2026-1-1 ", "2026-01-01", .date))
        #expect(try same("2026-01-01 10:00", "2026-01-01", .date))
        #expect(try same("epoch", "1970-01-01", .date))
        #expect(try read("1970-01-02", .date) == .instant(1))
        #expect(try read("2000-03-01", .date) == .instant(11_017))
        #expect(try less("0044-03-15 BC", "0001-01-01", .date))
        #expect(try less("0001-12-31 BC", "0001-01-01", .date))
        #expect(try less("5874897-12-31", "infinity", .date))
        #expect(try less("-infinity", "4714-11-24 BC", .date))
        #expect(failure("2026-02-30", .date)?.message == #"date/time field value out of range: "2026-02-30""#)
        #expect(failure("2026-02-30", .date)?.sqlState == "22008")
        #expect(try read("2024-02-29", .date) == read("2024-03-01", .date).predecessorDay)
        #expect(failure("x", .date)?.message == #"invalid input syntax for type date: "x""#)
        #expect(failure("x", .date)?.sqlState == "22007")
        #expect(failure("5874898-01-01", .date)?.message == #"date out of range: "5874898-01-01""#)
        #expect(failure("0000-01-01", .date) != nil)
        #expect(failure("Jan 5 2026", .date) != nil)
    }

    @Test func timestamps() throws {
        #expect(try same("2026-01-01 24:00", "2026-01-02T00:00:00", .timestamp))
        #expect(try same("2026-01-01 23:59:60", "2026-01-02T00:00:00", .timestamp))
        #expect(try same("2026-01-01 10:00 +05", "2026-01-01T10:00:00", .timestamp))
        #expect(try same("2026-01-01", "2026-01-01T00:00:00", .timestamp))
        #expect(try read("2000-01-01T00:00:01.5", .timestamp) == .instant(1_500_000))
        #expect(try same("epoch", "1970-01-01T00:00:00", .timestamp))
        #expect(try less("2026-01-01T10:00:00.000001", "2026-01-01T10:00:00.000002", .timestamp))
        #expect(try less("2026-01-01T10:00:00", "infinity", .timestamp))
        #expect(failure("2026-01-01 25:00", .timestamp)?.message == #"date/time field value out of range: "2026-01-01 25:00""#)
        #expect(failure("2026-01-01 24:00:01", .timestamp) != nil)
        #expect(failure("294277-01-01", .timestamp)?.message == #"timestamp out of range: "294277-01-01""#)
        #expect(failure("x", .timestamp)?.message == #"invalid input syntax for type timestamp: "x""#)
        #expect(failure("99999999999999999-01-01", .timestamp) != nil)
    }

    @Test func timestampsWithZonesCompareAsInstants() throws {
        #expect(try same("2026-01-01T10:00:00Z", "2026-01-01T15:30:00+05:30", .timestamptz))
        #expect(try same("2026-01-01T10:00:00+00:00", "2026-01-01 02:00:00-08", .timestamptz))
        #expect(try same("2026-01-01T10:00:00.1234567+05:30", "2026-01-01 04:30:00.123457+00", .timestamptz))
        #expect(try same("2026-01-01 10:00", "2026-01-01T10:00:00+00:00", .timestamptz))
        #expect(try same("2026-01-01 10:00 UTC", "2026-01-01 11:00 +0100", .timestamptz))
        #expect(try same("2026-01-01T10:00:00+00:53:28", "2026-01-01T09:06:32Z", .timestamptz))
        #expect(try less("2026-01-01T10:00:00+01:00", "2026-01-01T09:30:00Z", .timestamptz))
        #expect(try less("0044-03-15T10:00:00+00:00 BC", "0001-01-01T00:00:00+00:00", .timestamptz))
        #expect(failure("x", .timestamptz)?.message == #"invalid input syntax for type timestamp with time zone: "x""#)
        #expect(failure("2026-01-01 10:00 Europe/Paris", .timestamptz) != nil)
        #expect(failure("2026-01-01 10:00 +16", .timestamptz)?.sqlState == "22009")
    }

    @Test func times() throws {
        #expect(try same("10:00", "10:00:00", .time))
        #expect(try same("10:00:00+05", "10:00", .time))
        #expect(try same("2026-01-01 10:00", "10:00", .time))
        #expect(try read("24:00", .time) == .instant(86_400_000_000))
        #expect(try less("09:59:59.999999", "10:00", .time))
        #expect(failure("24:00:01", .time)?.message == #"date/time field value out of range: "24:00:01""#)
        #expect(failure("x", .time)?.message == #"invalid input syntax for type time: "x""#)
        #expect(failure("x", .timetz)?.message == #"invalid input syntax for type time with time zone: "x""#)
        // timetz: by UTC time, then by zone, so equal instants in different zones differ.
        #expect(try !same("10:00:00+05:30", "04:30:00+00", .timetz))
        #expect(try less("10:00:00+05:30", "04:30:00+00", .timetz))
        #expect(try same("10:00:00+05:30", "10:00+0530", .timetz))
    }

    @Test func bytea() throws {
        #expect(try read(#"\x0102"#, .bytea) == .bytes([1, 2]))
        #expect(try read(#"\x01 0A"#, .bytea) == .bytes([1, 10]))
        #expect(try read("abc", .bytea) == .bytes([97, 98, 99]))
        #expect(try read(#"\\001x"#, .bytea) == .bytes([92, 48, 48, 49, 120]))
        #expect(try read(#"\001x"#, .bytea) == .bytes([1, 120]))
        #expect(failure(#"\xzz"#, .bytea)?.message == #"invalid hexadecimal digit: "z""#)
        #expect(failure(#"\x0"#, .bytea)?.message == "invalid hexadecimal data: odd number of digits")
        #expect(failure(#"\q"#, .bytea)?.message == "invalid input syntax for type bytea")
        #expect(try less(#"\x01"#, #"\x0100"#, .bytea))
    }

    @Test func jsonbEqualityIgnoresKeyOrderAndNumberForm() throws {
        #expect(try same(#"{"a":1,"b":[1.0]}"#, #"{"b":[1],"a":1.00}"#, .jsonb))
        #expect(try same(#"{"a":1,"a":2}"#, #"{"a":2}"#, .jsonb))
        #expect(try !same(#"{"a":1}"#, #"{"a":"1"}"#, .jsonb))
        #expect(failure("x", .jsonb)?.message == "invalid input syntax for type json")
    }

    @Test func textForms() throws {
        #expect(try same("a  ", "a", .bpchar))
        #expect(try !same("a  ", "a", .text))
        #expect(try same("ABC", "abc", .citext))
        #expect(try read(String(repeating: "é", count: 40), .name) == .text(String(repeating: "é", count: 31)))
        // By code point: "é" (U+00E9) sorts after "z"; composed and decomposed forms differ.
        #expect(try less("z", "é", .text))
        #expect(try !same("\u{E9}", "e\u{301}", .text))
        #expect(try less("a", "ab", .text))
        #expect(try read("anything at all", .other("mood")) == .text("anything at all"))
    }

    @Test func arrayLiterals() throws {
        #expect(try ArrayLiteral.parse("{1,2,NULL}") == ArrayLiteral(elements: ["1", "2", nil], dimensions: [3]))
        #expect(try ArrayLiteral.parse(" { a b , c } ") == ArrayLiteral(elements: ["a b", "c"], dimensions: [2]))
        #expect(try ArrayLiteral.parse(#"{NULL,"NULL",nUlL,\NULL}"#) == ArrayLiteral(elements: [nil, "NULL", nil, "NULL"], dimensions: [4]))
        #expect(try ArrayLiteral.parse(#"{a\\,b}"#) == ArrayLiteral(elements: [#"a\"#, "b"], dimensions: [2]))
        #expect(try ArrayLiteral.parse(#"{a\,b,"c\"d"}"#) == ArrayLiteral(elements: ["a,b", #"c"d"#], dimensions: [2]))
        #expect(try ArrayLiteral.parse(#"{a b\ }"#) == ArrayLiteral(elements: ["a b "], dimensions: [1]))
        #expect(try ArrayLiteral.parse(#"{ "a" , b }"#) == ArrayLiteral(elements: ["a", "b"], dimensions: [2]))
        #expect(try ArrayLiteral.parse("{}") == ArrayLiteral(elements: [], dimensions: []))
        #expect(try ArrayLiteral.parse("{{1,2},{3,4},{5,6}}") == ArrayLiteral(elements: ["1", "2", "3", "4", "5", "6"], dimensions: [3, 2]))
        func detail(_ text: String) -> String? {
            do {
                _ = try ArrayLiteral.parse(text)
                return nil
            } catch {
                #expect(error.message == "malformed array literal: \"\(text)\"")
                return error.detail
            }
        }
        #expect(detail("{a") == "Unexpected end of input.")
        #expect(detail("{1,2}}") == "Junk after closing right brace.")
        #expect(detail("{{1},2}") == "Unexpected array element.")
        #expect(detail("{1,{2}}") == "Unexpected array element.")
        #expect(detail(#"{a"b}"#) == "Unexpected array element.")
        #expect(detail(#"{"a"b}"#) == "Unexpected array element.")
        #expect(detail("1,2") == #"Array value must start with "{" or dimension information."#)
        #expect(detail("{a,,b}") == #"Unexpected "," character."#)
        #expect(detail("{a,}") == #"Unexpected "}" character."#)
        #expect(detail("{{1,2},{3}}") == "Multidimensional arrays must have sub-arrays with matching dimensions.")
        #expect(throws: FilterBindingError.self) { try ArrayLiteral.parse(String(repeating: "{", count: 100_000)) }
        do {
            _ = try ArrayLiteral.parse("{{{{{{{1}}}}}}}")
        } catch {
            #expect(error.message == "number of array dimensions (7) exceeds the maximum allowed (6)")
        }
        #expect(throws: FilterBindingError.invalidSyntax(type: "integer", input: "x")) { try ValueInput.readArray("{1,x}", of: .int4) }
    }

    @Test func arraysCompareLikeArrayCmp() throws {
        func array(_ text: String) throws -> FilterValue { try ValueInput.readArray(text, of: .int4) }
        #expect(try array("{1,2,3}").compare(array("{1,2,3,0}")) < 0)
        #expect(try array("{1,NULL}").compare(array("{1,5}")) > 0)
        #expect(try array("{1,NULL}") == array("{1,NULL}"))
        #expect(try array("{}") == array("{}"))
        #expect(try array("{{1,2}}").compare(array("{1,2}")) > 0)
        #expect(try array("{1,2}") == array("{ 1 , 2 }"))
    }
}

extension FilterValue {
    fileprivate var predecessorDay: FilterValue {
        guard case .instant(let days) = self else { return self }
        return .instant(days - 1)
    }
}
