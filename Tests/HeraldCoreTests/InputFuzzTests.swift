import Foundation
import HeraldCore
import NIOCore
import Testing

/// Seeded random-input fuzzing of everything a client's bytes reach before any I/O: V1 and V2 text frames, the
/// session state machine, and the filter grammar with its typed evaluation. Every input must either work or fail
/// with a thrown error, never crash or hang. CI runs a bounded budget; `HERALD_FUZZ_ITERATIONS=1000000 swift test
/// --filter InputFuzzTests` runs longer, and `HERALD_FUZZ_SEED` replays another sequence (docs/configuration.md).
@Suite struct InputFuzzTests {
    static let iterations = ProcessInfo.processInfo.environment["HERALD_FUZZ_ITERATIONS"].flatMap(Int.init) ?? 20_000
    static let seed = ProcessInfo.processInfo.environment["HERALD_FUZZ_SEED"].flatMap(UInt64.init) ?? 0x4845_5241_4C44

    static let frameCorpus = [
        #"{"topic":"realtime:room1","event":"phx_join","payload":{"config":{"broadcast":{"self":true},"presence":{"key":"a"},"postgres_changes":[{"event":"*","schema":"public","table":"t","filter":"id=eq.1"}]},"access_token":"x"},"ref":"1","join_ref":"1"}"#,
        #"{"topic":"phoenix","event":"heartbeat","payload":{},"ref":"2"}"#,
        #"["1","2","realtime:room1","broadcast",{"type":"broadcast","event":"e","payload":{"a":[1,2.5e3,-0,true,null,"\u00e9\ud83d\ude00"]}}]"#,
        #"["1","3","realtime:room1","presence",{"type":"presence","event":"track","payload":{"name":"x"}}]"#,
        #"["1","4","realtime:room1","access_token",{"access_token":"a.b.c"}]"#,
        #"[null,"5","realtime:room1","phx_leave",{}]"#,
    ]

    static let filterCorpus = [
        "id=eq.1", "name=neq.bob", "n=gt.1.5", "created=lt.2026-01-01T00:00:00Z", "tags=cs.{a,b}", "id=in.(1,2,3)",
        "name=like.a%", "name=ilike.%B_", "flag=is.null", "flag=is.true", "body=match.^a[bc]+$", "id=not.eq.3",
        "uid=eq.8d0fd2b3-9ca7-4c8c-a8a9-5b2d1e1f2a10", "id=gte.1&name=eq.x",
    ]

    static let columns = [
        Column(name: "id", type: "int8"), Column(name: "name", type: "text"), Column(name: "n", type: "numeric"),
        Column(name: "created", type: "timestamptz"), Column(name: "tags", type: "_text"), Column(name: "flag", type: "bool"),
        Column(name: "body", type: "text"), Column(name: "uid", type: "uuid"),
    ]

    static let row: JSONObject = [
        "id": 3, "name": "bob", "n": .number("2.5"), "created": "2025-12-31T23:00:00+00:00", "tags": ["a", "b"], "flag": nil,
        "body": "abcbc", "uid": "8d0fd2b3-9ca7-4c8c-a8a9-5b2d1e1f2a10",
    ]

    /// Mutations that keep much of the structure: flips, cuts, splices, repeats and characters parsers care about.
    static func mutate(_ input: [UInt8], corpus: [[UInt8]], using random: inout SplitMixRandom) -> [UInt8] {
        var bytes = input
        let special = Array(#"{}[]",:\.-+eE0123456789%_()&*^$ "#.utf8) + [0, 0x7F, 0x80, 0xC3, 0xFF, 0xED, 0xA0]
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            guard !bytes.isEmpty else {
                bytes = corpus.randomElement(using: &random) ?? []
                continue
            }
            let at = Int.random(in: 0..<bytes.count, using: &random)
            switch Int.random(in: 0..<6, using: &random) {
            case 0: bytes[at] = UInt8.random(in: 0...255, using: &random)
            case 1: bytes[at] = special.randomElement(using: &random) ?? 0
            case 2: bytes = Array(bytes.prefix(at))
            case 3: bytes.insert(contentsOf: bytes[at...].prefix(Int.random(in: 1...16, using: &random)), at: at)
            case 4:
                let other = corpus.randomElement(using: &random) ?? []
                bytes = Array(bytes.prefix(at)) + other.suffix(Int.random(in: 0...other.count, using: &random))
            default: bytes.remove(at: at)
            }
        }
        return bytes
    }

    @Test func textFramesAndTheSessionSurviveMutatedInput() {
        var random = SplitMixRandom(seed: Self.seed)
        let corpus = Self.frameCorpus.map { Array($0.utf8) }
        let claims = TokenClaims(role: "authenticated", expiresAt: 4_000_000_000, claims: ["role": "authenticated"])
        var sessions = [SocketSession(version: .v1), SocketSession(version: .v2)]
        var decoded = 0
        for iteration in 0..<Self.iterations {
            let input = Self.mutate(corpus[iteration % corpus.count], corpus: corpus, using: &random)
            for index in sessions.indices {
                let version: SerializerVersion = index == 0 ? .v1 : .v2
                guard let message = try? PhoenixMessage.decode(text: input, version: version) else { continue }
                decoded += 1
                let newChannel = NewChannel(subscriber: SubscriberID(UInt64(iteration)), generatedPresenceKey: "k")
                _ = sessions[index].handle(message, token: .valid(claims), newChannel: newChannel, now: .now)
                #expect(sessions[index].channels.count <= sessions[index].limits.maxChannels)
                // What decodes re-encodes and decodes to the same message (V1 frames from the server carry no join_ref).
                var expected = message
                if version == .v1 { expected.joinRef = nil }
                let again = try? PhoenixMessage.decode(text: message.encode(version).readableBytesView, version: version)
                #expect(again == expected, "\(String(decoding: input, as: UTF8.self))")
            }
        }
        #expect(decoded > 0)
    }

    @Test func theFilterGrammarSurvivesMutatedInput() {
        var random = SplitMixRandom(seed: Self.seed &+ 1)
        let corpus = Self.filterCorpus.map { Array($0.utf8) }
        var bound = 0
        for iteration in 0..<Self.iterations {
            let input = Self.mutate(corpus[iteration % corpus.count], corpus: corpus, using: &random)
            guard let conditions = try? FilterParser.parse(String(decoding: input, as: UTF8.self)),
                let filter = try? BoundFilter(conditions, columns: Self.columns)
            else { continue }
            bound += 1
            _ = filter.matches(Self.row)
            _ = filter.matches([:])
        }
        #expect(bound > 0)
    }
}
