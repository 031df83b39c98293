import HeraldCore
import Testing

@Suite struct JSONTests {
    @Test func parsesAndWritesKeepingKeyOrderAndNumberText() throws {
        let text = #"{"b":1,"a":[true,false,null],"n":123456789012345678901234567890.5,"s":"h\u00e9\n\"x\""}"#
        let value = try JSONValue.parse(text)
        #expect(value.objectValue?.keys == ["b", "a", "n", "s"])
        #expect(value["n"] == .number("123456789012345678901234567890.5"))
        #expect(value["s"] == .string("hé\n\"x\""))
        #expect(value.jsonString == #"{"b":1,"a":[true,false,null],"n":123456789012345678901234567890.5,"s":"hé\n\"x\""}"#)
    }

    @Test func surrogatePairsDecode() throws {
        #expect(try JSONValue.parse(#""\ud83d\ude00""#) == .string("😀"))
        #expect(throws: JSONParseError.self) { try JSONValue.parse(#""\ud83d""#) }
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc", "{\"a\":1}x", "[1 2]", "\"\u{01}\"", "{1:2}",
    ])
    func rejectsMalformedInput(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONValue.parse(text) }
    }

    @Test func rejectsInvalidUTF8() {
        #expect(throws: JSONParseError.self) { try JSONValue.parse([0x22, 0xFF, 0x22]) }
    }

    @Test func deepNestingIsRejectedNotCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONValue.parse(deep) }
    }

    @Test func controlCharactersAreEscaped() {
        #expect(JSONValue.string("a\u{01}\tb").jsonString == #""a\u0001\tb""#)
    }

    @Test func randomBytesNeverCrash() {
        var generator = SplitMixRandom(seed: 42)
        let alphabet = Array(#"{}[]:,"\ u0123456789abcdefnrtl-+.eE"#.utf8)
        for _ in 0..<20_000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let bytes = (0..<length).map { _ in alphabet.randomElement(using: &generator)! }
            if let value = try? JSONValue.parse(bytes) {
                // Whatever parses must survive a round trip.
                #expect((try? JSONValue.parse(value.jsonBytes)) == value)
            }
        }
    }

    @Test func base64URLRoundTrips() {
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8(($0 * 37) & 0xFF) }
            #expect(Base64URL.decode(Substring(Base64URL.encode(bytes))) == bytes)
        }
        #expect(Base64URL.decode("a") == nil)
        #expect(Base64URL.decode("ab$c") == nil)
    }
}
