import Testing

@testable import HeraldCore

@Suite struct BindingIndexTests {
    static let columns = [
        Column(name: "id", type: "int4"), Column(name: "room_id", type: "uuid"), Column(name: "n", type: "int4"),
        Column(name: "tag", type: "text"),
    ]
    static let rooms = [
        "00000000-0000-0000-0000-00000000000a", "00000000-0000-0000-0000-00000000000b", "00000000-0000-0000-0000-00000000000c",
    ]

    func binding(
        _ id: Int, _ event: ChangeType? = nil, schema: String = "public", table: String = "messages", where filter: String = ""
    ) throws -> PostgresBinding {
        PostgresBinding(
            id: id, event: event, schema: schema, table: table,
            filter: try BoundFilter(FilterParser.parse(filter), columns: Self.columns))
    }

    func change(
        _ type: ChangeType, schema: String = "public", table: String = "messages", record: JSONObject? = nil, old: JSONObject? = nil
    ) -> Change {
        Change(
            schema: schema, table: table, type: type, commitTimestamp: 0, columns: Self.columns, record: record, oldRecord: old)
    }

    func matches(_ index: PostgresBindingIndex, _ change: Change) -> [UInt64: [Int]] {
        Dictionary(uniqueKeysWithValues: index.match(change).map { ($0.subscriber.rawValue, $0.ids) })
    }

    @Test func emptyIndex() {
        let index = PostgresBindingIndex()
        #expect(index.isEmpty)
        #expect(index.match(change(.insert, record: ["id": 1])).isEmpty)
    }

    @Test func aTableWhoseBindingsDoNotFilterMatchesRegardlessOfRows() throws {
        var index = PostgresBindingIndex()
        index.insert(SubscriberID(1), bindings: [try binding(10, .insert)])
        index.insert(SubscriberID(2), bindings: [try binding(20, table: "*")])
        #expect(index.matchIgnoresRows(schema: "public", table: "messages"))
        // A filter on the table itself, keyed (eq) or not, or through a wildcard binding, makes rows matter.
        index.insert(SubscriberID(3), bindings: [try binding(30, where: "n=gt.1")])
        #expect(!index.matchIgnoresRows(schema: "public", table: "messages"))
        index.remove(SubscriberID(3))
        #expect(index.matchIgnoresRows(schema: "public", table: "messages"))
        index.insert(SubscriberID(4), bindings: [try binding(40, schema: "*", table: "messages", where: "id=eq.1")])
        #expect(!index.matchIgnoresRows(schema: "public", table: "messages"))
        #expect(index.matchIgnoresRows(schema: "public", table: "other"))
        index.insert(SubscriberID(4), bindings: [try binding(41)])
        #expect(index.matchIgnoresRows(schema: "public", table: "messages"))
    }

    @Test func filtersByTableAndEvent() throws {
        var index = PostgresBindingIndex()
        index.insert(SubscriberID(1), bindings: [try binding(10), try binding(11, .insert), try binding(12, .delete)])
        index.insert(SubscriberID(2), bindings: [try binding(20, table: "other")])
        #expect(matches(index, change(.insert, record: ["id": 1])) == [1: [10, 11]])
        #expect(matches(index, change(.update, record: ["id": 1], old: ["id": 1])) == [1: [10]])
        #expect(matches(index, change(.delete, old: ["id": 1])) == [1: [10, 12]])
        #expect(matches(index, change(.insert, table: "other", record: [:])) == [2: [20]])
        #expect(matches(index, change(.insert, schema: "private", record: [:])).isEmpty)
    }

    @Test func wildcards() throws {
        var index = PostgresBindingIndex()
        index.insert(SubscriberID(1), bindings: [try binding(1, schema: "public", table: "*")])
        index.insert(SubscriberID(2), bindings: [try binding(2, schema: "*", table: "messages")])
        index.insert(SubscriberID(3), bindings: [try binding(3, schema: "*", table: "*")])
        index.insert(SubscriberID(4), bindings: [try binding(4, schema: "public", table: "messages")])
        #expect(matches(index, change(.insert, record: [:])) == [1: [1], 2: [2], 3: [3], 4: [4]])
        #expect(matches(index, change(.insert, table: "rooms", record: [:])) == [1: [1], 3: [3]])
        #expect(matches(index, change(.insert, schema: "chat", record: [:])) == [2: [2], 3: [3]])
        #expect(matches(index, change(.insert, schema: "chat", table: "rooms", record: [:])) == [3: [3]])
    }

    @Test func equalityIndexOnlyEvaluatesTheRowsValue() throws {
        var index = PostgresBindingIndex()
        for (offset, room) in Self.rooms.enumerated() {
            index.insert(SubscriberID(UInt64(offset)), bindings: [try binding(offset, where: "room_id=eq.\(room.uppercased())")])
        }
        index.insert(SubscriberID(9), bindings: [try binding(9, where: "room_id=eq.\(Self.rooms[1]),n=gt.5"), try binding(99, where: "n=gt.5")])
        #expect(index.storageCounts.keyedValues == 3)
        #expect(matches(index, change(.insert, record: ["room_id": .string(Self.rooms[1]), "n": 1])) == [1: [1]])
        #expect(matches(index, change(.insert, record: ["room_id": .string(Self.rooms[1]), "n": 7])) == [1: [1], 9: [9, 99]])
        #expect(matches(index, change(.insert, record: ["room_id": nil, "n": 7])) == [9: [99]])
        #expect(matches(index, change(.insert, record: ["n": 7])) == [9: [99]])
        #expect(matches(index, change(.insert, record: ["room_id": "not a uuid", "n": 7])) == [9: [99]])
        // DELETE looks at the old image.
        #expect(matches(index, change(.delete, record: ["room_id": .string(Self.rooms[0])], old: ["room_id": .string(Self.rooms[2])])) == [2: [2]])
        #expect(matches(index, change(.delete)).isEmpty)
    }

    @Test func idsFollowBindingOrderWithoutDuplicates() throws {
        var index = PostgresBindingIndex()
        index.insert(
            SubscriberID(5),
            bindings: [
                try binding(30, where: "n=gt.0"), try binding(10), try binding(30, where: "n=gt.0"), try binding(20, where: "id=eq.1"),
                try binding(10, .insert, schema: "*", table: "*"),
            ])
        #expect(index.match(change(.insert, record: ["id": 1, "n": 2])).map(\.ids) == [[30, 10, 20]])
        #expect(index.match(change(.insert, record: ["id": 2, "n": 0])).map(\.ids) == [[10]])
        #expect(index.match(change(.insert, record: ["id": 2, "n": 0])).map(\.subscriber) == [SubscriberID(5)])
    }

    @Test func subscribersComeOutInIdOrder() throws {
        var index = PostgresBindingIndex()
        for raw in [7, 3, 9, 1] as [UInt64] { index.insert(SubscriberID(raw), bindings: [try binding(Int(raw))]) }
        #expect(index.match(change(.insert, record: [:])).map(\.subscriber.rawValue) == [1, 3, 7, 9])
    }

    @Test func insertReplacesAndRemoveLeavesNothingBehind() throws {
        var index = PostgresBindingIndex()
        index.insert(SubscriberID(1), bindings: [try binding(1, where: "room_id=eq.\(Self.rooms[0])"), try binding(2, schema: "*", table: "*")])
        index.insert(SubscriberID(1), bindings: [try binding(3, table: "other", where: "n=eq.4")])
        #expect(matches(index, change(.insert, record: ["room_id": .string(Self.rooms[0])])).isEmpty)
        #expect(matches(index, change(.insert, table: "other", record: ["n": 4])) == [1: [3]])
        #expect(index.storageCounts.tables == 1)
        index.insert(SubscriberID(2), bindings: [try binding(4, where: "n=eq.4"), try binding(5, where: "n=eq.4"), try binding(6)])
        index.remove(SubscriberID(1))
        index.remove(SubscriberID(1))
        #expect(matches(index, change(.insert, table: "other", record: ["n": 4])).isEmpty)
        index.insert(SubscriberID(2), bindings: [])
        #expect(index.isEmpty)
        #expect(index.storageCounts == (0, 0, 0, 0))
    }

    /// Random bindings and changes, compared with evaluating every binding of every subscriber.
    @Test func randomizedAgainstBruteForce() throws {
        var random = SplitMixRandom(seed: 42)
        let schemas = ["public", "chat", "*"]
        let tables = ["messages", "rooms", "*"]
        var index = PostgresBindingIndex()
        var model: [UInt64: [PostgresBinding]] = [:]

        func randomValue(_ column: String) -> String {
            switch column {
            case "room_id": Self.rooms.randomElement(using: &random)!
            case "tag": ["a", "b", "c"].randomElement(using: &random)!
            default: String(Int.random(in: -2...2, using: &random))
            }
        }
        func randomFilter() -> String {
            (0..<Int.random(in: 0...3, using: &random)).map { _ in
                let column = ["room_id", "room_id", "n", "tag", "id"].randomElement(using: &random)!
                let negated = Int.random(in: 0..<5, using: &random) == 0 ? "not." : ""
                switch Int.random(in: 0..<8, using: &random) {
                case 0...3: return "\(column)=\(negated)eq.\(randomValue(column))"
                case 4: return "\(column)=\(negated)neq.\(randomValue(column))"
                case 5: return "\(column)=\(negated)in.(\(randomValue(column)),\(randomValue(column)))"
                case 6: return "\(column)=\(negated)is.null"
                default: return "\(column)=\(negated)isdistinct.\(randomValue(column))"
                }
            }.joined(separator: ",")
        }
        func randomRow() -> JSONObject? {
            if Int.random(in: 0..<10, using: &random) == 0 { return nil }
            var row = JSONObject()
            for column in ["id", "room_id", "n", "tag"] {
                switch Int.random(in: 0..<8, using: &random) {
                case 0: break
                case 1: row[column] = .null
                default:
                    let value = randomValue(column)
                    row[column] = column == "n" || column == "id" ? .number(value) : .string(value)
                }
            }
            return row
        }
        func randomEvent() -> ChangeType? { [nil, .insert, .update, .delete].randomElement(using: &random)! }

        for round in 0..<1_000 {
            let subscriber = UInt64.random(in: 0..<80, using: &random)
            if Int.random(in: 0..<4, using: &random) == 0 {
                index.remove(SubscriberID(subscriber))
                model[subscriber] = nil
            } else {
                let bindings = try (0..<Int.random(in: 0...4, using: &random)).map { _ in
                    try binding(
                        Int.random(in: 1...6, using: &random), randomEvent(), schema: schemas.randomElement(using: &random)!,
                        table: tables.randomElement(using: &random)!, where: randomFilter())
                }
                index.insert(SubscriberID(subscriber), bindings: bindings)
                model[subscriber] = bindings.isEmpty ? nil : bindings
            }
            for _ in 0..<3 {
                let type = [ChangeType.insert, .update, .delete].randomElement(using: &random)!
                let change = change(
                    type, schema: ["public", "chat"].randomElement(using: &random)!, table: ["messages", "rooms"].randomElement(using: &random)!,
                    record: type == .delete ? nil : randomRow(), old: type == .insert ? nil : randomRow())
                let row = (type == .delete ? change.oldRecord : change.record) ?? [:]
                var expected: [(UInt64, [Int])] = []
                for (subscriber, bindings) in model.sorted(by: { $0.key < $1.key }) {
                    var ids: [Int] = []
                    for binding in bindings
                    where (binding.schema == "*" || binding.schema == change.schema) && (binding.table == "*" || binding.table == change.table)
                        && binding.matches(type, row: row) && !ids.contains(binding.id)
                    {
                        ids.append(binding.id)
                    }
                    if !ids.isEmpty { expected.append((subscriber, ids)) }
                }
                let actual = index.match(change)
                #expect(actual.map(\.subscriber.rawValue) == expected.map(\.0), "round \(round)")
                #expect(actual.map(\.ids) == expected.map(\.1), "round \(round)")
            }
            #expect(index.isEmpty == model.isEmpty)
        }
        for subscriber in model.keys { index.remove(SubscriberID(subscriber)) }
        #expect(index.isEmpty)
        #expect(index.storageCounts == (0, 0, 0, 0))
    }
}
