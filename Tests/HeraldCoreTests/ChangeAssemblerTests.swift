@testable import HeraldCore
import Testing

@Suite("Change assembler")
struct ChangeAssemblerTests {
    typealias F = PgOutputFixtures

    /// Feeds hex fixtures (or messages) and collects the events.
    struct Feeder {
        var assembler = ChangeAssembler(types: PgTypeCatalog(F.kindsTypes))

        mutating func feed(_ messages: [PgOutputMessage]) throws -> [ReplicationEvent] {
            var events: [ReplicationEvent] = []
            for message in messages {
                if let event = try assembler.consume(message) { events.append(event) }
            }
            return events
        }

        mutating func feed(hex fixtures: String...) throws -> [ReplicationEvent] {
            try feed(fixtures.map { try decode($0) })
        }
    }

    static func begin(_ lsn: UInt64, xid: UInt32 = 1) -> PgOutputMessage {
        .begin(.init(finalLSN: LSN(lsn), commitTime: 1_000_000, transactionID: xid))
    }

    static func commit(_ lsn: UInt64) -> PgOutputMessage {
        .commit(.init(flags: 0, commitLSN: LSN(lsn), endLSN: LSN(lsn + 0x30), commitTime: 1_000_000))
    }

    /// What the trigger source makes of a `row_to_json` record for the kinds table.
    static func triggerRecord(_ rowToJSON: String, columns: [Column]) throws -> JSONObject? {
        let columnsJSON = JSONValue.array(columns.map { ["name": .string($0.name), "type": .string($0.type)] }).jsonString
        let payload = #"{"schema":"public","table":"kinds","type":"INSERT","xid":"1","columns":"# + columnsJSON + #","record":"# + rowToJSON + "}"
        return try TriggerPayload(json: Array(payload.utf8)).record
    }

    @Test func everyCommonTypeConvertsAsRowToJSONWrites() throws {
        var feeder = Feeder()
        let relation = try decode(F.relationKinds)
        guard case .relation(let kinds) = relation else { return }
        #expect(feeder.assembler.missingTypes(for: kinds) == [])
        let events = try feeder.feed(
            [try decode(F.beginKinds1), try decode(F.typeMood), try decode(F.typePosint), relation, try decode(F.insertKinds1), try decode(F.commitKinds1)]
                + [F.insertKinds2, F.insertKinds3, F.insertKinds4].enumerated().flatMap { index, insert in
                    [Self.begin(0x1B0_0000 + UInt64(index) * 0x100), try decode(insert), Self.commit(0x1B0_0000 + UInt64(index) * 0x100)]
                }
        )
        let changes = events.compactMap { event -> Change? in if case .change(let change) = event { change } else { nil } }
        #expect(changes.count == 4)
        let expectedColumns = [
            ("id", "int4"), ("i2", "int2"), ("i4", "int4"), ("i8", "int8"), ("n", "numeric"), ("n2", "numeric"), ("f4", "float4"),
            ("f8", "float8"), ("b", "bool"), ("t", "text"), ("vc", "varchar"), ("u", "uuid"), ("j", "json"), ("jb", "jsonb"),
            ("ts", "timestamp"), ("tstz", "timestamptz"), ("d", "date"), ("tm", "time"), ("tmtz", "timetz"), ("by", "bytea"),
            ("m", "mood"), ("dom", "posint"), ("ai", "_int4"), ("at", "_text"), ("ajb", "_jsonb"), ("ats", "_timestamp"),
            ("a2", "_int4"), ("iv", "interval"), ("ch", "bpchar"),
        ].map { Column(name: $0.0, type: $0.1) }
        for (change, rowToJSON) in zip(changes, F.kindsRowToJSON) {
            #expect(change.schema == "public" && change.table == "kinds" && change.type == .insert)
            #expect(change.columns == expectedColumns)
            #expect(change.oldRecord == nil)
            #expect(change.record == (try Self.triggerRecord(rowToJSON, columns: expectedColumns)))
        }
        // Spot checks of what the comparison covers.
        #expect(changes[0].record?["by"] == "0102ff")
        #expect(changes[0].record?["n"] == .number("12345678901234567890.123456789"))
        #expect(changes[0].record?["tstz"] == "2026-01-01T10:00:00.123456+00:00")
        #expect(changes[0].record?["a2"] == [[1, 2], [3, 4]])
        #expect(changes[1].record?["f8"] == "-Infinity")
        #expect(changes[3].record?["ts"] == "0044-03-15T10:00:00 BC")
        #expect(changes[3].record?["ai"] == [7, 8])
    }

    @Test func commitTimeStampsEveryChange() throws {
        var feeder = Feeder()
        let events = try feeder.feed(hex: F.beginKinds1, F.relationKinds, F.insertKinds1, F.commitKinds1)
        let unixMicroseconds = Int64(0x0003_0464_5DF4_6A4F) + 946_684_800_000_000
        #expect(events.first == .begin(.init(transactionID: 0x2FC, commitLSN: LSN(0x1A0_0560), commitTimestamp: unixMicroseconds)))
        #expect(events.last == .commit(.init(commitLSN: LSN(0x1A0_0560), endLSN: LSN(0x1A0_0590), commitTimestamp: unixMicroseconds)))
        guard case .change(let change) = events[1] else { return }
        #expect(change.commitTimestamp == unixMicroseconds)
        #expect(feeder.assembler.deliveredThrough == LSN(0x1A0_0590))
        #expect(!feeder.assembler.isInTransaction)
    }

    func changes(_ feeder: inout Feeder, _ messages: [PgOutputMessage]) throws -> [Change] {
        try feeder.feed(messages).compactMap { event in if case .change(let change) = event { change } else { nil } }
    }

    @Test func defaultIdentityAndUnchangedToast() throws {
        var feeder = Feeder()
        let long = JSONValue.string(String(repeating: "x", count: 3000))
        let found = try changes(
            &feeder,
            [Self.begin(0x100), try decode(F.relationPeople), try decode(F.insertPeopleToasted), try decode(F.updatePeopleUnchangedToast),
                try decode(F.updatePeopleKeyChanged), try decode(F.deletePeople), Self.commit(0x100)]
        )
        #expect(found.map(\.type) == [.insert, .update, .update, .delete])
        #expect(found[0].record == ["id": 2, "name": "Bob", "bio": long])
        // No old key is sent when the key did not change: it comes from the new row. The unchanged TOASTed
        // bio cannot be known without an old row, so it is left out.
        #expect(found[1].record == ["id": 2, "name": "Bobby"])
        #expect(found[1].oldRecord == ["id": 2])
        #expect(found[2].record == ["id": 3, "name": "Bobby"])
        #expect(found[2].oldRecord == ["id": 2])
        #expect(found[3].record == nil)
        #expect(found[3].oldRecord == ["id": 3])
    }

    @Test func fullIdentityFillsUnchangedToastFromTheOldRow() throws {
        var feeder = Feeder()
        let long = JSONValue.string(String(repeating: "y", count: 3000))
        let found = try changes(
            &feeder,
            [Self.begin(0x100), try decode(F.relationAudit), try decode(F.insertAudit), try decode(F.updateAuditFull),
                try decode(F.deleteAuditFull), Self.commit(0x100)]
        )
        #expect(found[1].record == ["id": 2, "note": long])
        #expect(found[1].oldRecord == ["id": 1, "note": long])
        #expect(found[2].oldRecord == ["id": 2, "note": long])
        let notes = try changes(&feeder, [Self.begin(0x200), try decode(F.relationNotes), try decode(F.updateNotesFull), Self.commit(0x200)])
        let body = JSONValue.string(String(repeating: "z", count: 3000))
        #expect(notes.first?.record == ["id": 1, "body": body, "tag": "b"])
        #expect(notes.first?.oldRecord == ["id": 1, "body": body, "tag": "a"])
    }

    @Test func identityNothingGivesAnEmptyOldRecord() throws {
        var feeder = Feeder()
        let relation = PgOutputMessage.Relation(
            id: 7, namespace: "public", name: "logs", replicaIdentity: .nothing,
            columns: [.init(isKey: false, name: "line", typeOID: 25, typeModifier: -1)]
        )
        let found = try changes(
            &feeder,
            [Self.begin(0x100), .relation(relation), .update(.init(relationID: 7, oldTuple: nil, newTuple: [.text("a")])), Self.commit(0x100)]
        )
        #expect(found.first?.oldRecord == [:])
    }

    @Test func truncateNamesEveryTable() throws {
        var feeder = Feeder()
        let events = try feeder.feed(
            [Self.begin(0x100), try decode(F.relationAudit), try decode(F.relationPeople), try decode(F.truncateAuditPeople), Self.commit(0x100)]
        )
        #expect(events[1] == .truncate([TableName(schema: "public", table: "audit"), TableName(schema: "public", table: "people")]))
    }

    @Test func originTypeAndMessagesProduceNothing() throws {
        var feeder = Feeder()
        let events = try feeder.feed(hex: F.beginMessage, F.originMessage, F.typeMood, F.messageTransactional, F.commitMessage, F.messageNonTransactional)
        #expect(events.count == 2)
    }

    @Test func inconsistentStreamsThrow() throws {
        var feeder = Feeder()
        #expect(throws: ReplicationDecodingError.self) { try feeder.feed(hex: F.insertKinds1) }
        #expect(throws: ReplicationDecodingError.self) { try feeder.feed([Self.commit(0x100)]) }
        #expect(throws: ReplicationDecodingError.self) { try feeder.feed([Self.begin(0x100), try decode(F.insertKinds1)]) }
        var other = Feeder()
        // A tuple that does not match its relation.
        #expect(throws: ReplicationDecodingError.self) { try other.feed([Self.begin(0x100), try decode(F.relationAudit), try decode(F.insertKinds2)]) }
        #expect(throws: ReplicationDecodingError.self) { try other.feed(hex: F.streamStartFirst) }
    }

    @Test func aTransactionCutInTheMiddleResumesWithoutRepeats() throws {
        var feeder = Feeder()
        let insert = { (id: Int) in PgOutputMessage.insert(.init(relationID: 0x4046, newTuple: [.text("\(id)"), .null])) }
        let first = try feeder.feed([Self.begin(0x100), try decode(F.relationAudit), insert(1), insert(2)])
        #expect(first.count == 3)
        #expect(feeder.assembler.isInTransaction)
        feeder.assembler.connectionRestarted()
        #expect(!feeder.assembler.isInTransaction)
        // The server sends the transaction again, from its beginning; cut again after one new change.
        let second = try feeder.feed([Self.begin(0x100), try decode(F.relationAudit), insert(1), insert(2), insert(3)])
        feeder.assembler.connectionRestarted()
        let third = try feeder.feed([Self.begin(0x100), try decode(F.relationAudit), insert(1), insert(2), insert(3), insert(4), Self.commit(0x100)])
        let ids = (first + second + third).compactMap { event -> JSONValue? in
            if case .change(let change) = event { change.record?["id"] } else { nil }
        }
        #expect(ids == [1, 2, 3, 4])
        #expect(second.count == 1 && third.count == 2)
        #expect(third.last == .commit(.init(commitLSN: LSN(0x100), endLSN: LSN(0x130), commitTimestamp: 1_000_000 + 946_684_800_000_000)))
    }

    @Test func transactionsDeliveredBeforeAReconnectionAreSkipped() throws {
        var feeder = Feeder()
        let insert = PgOutputMessage.insert(.init(relationID: 0x4046, newTuple: [.text("1"), .null]))
        let transaction = [Self.begin(0x100), try decode(F.relationAudit), insert, Self.commit(0x100)]
        #expect(try feeder.feed(transaction).count == 3)
        feeder.assembler.connectionRestarted()
        #expect(try feeder.feed(transaction).isEmpty)
        let next = try feeder.feed([Self.begin(0x200), insert, Self.commit(0x200)])
        #expect(next.count == 3)
    }

    @Test func typeLookupsFollowDomainsAndArrays() {
        var catalog = PgTypeCatalog([.init(oid: 16436, name: "posint", baseType: 23)])
        #expect(catalog.missing([16436, 1007, 0]) == [23, 1007])
        catalog.add([.init(oid: 23, name: "int4"), .init(oid: 1007, name: "_int4", elementType: 23)])
        #expect(catalog.missing([16436, 1007]) == [])
        #expect(catalog.name(of: 16436) == "posint")
        #expect(catalog.name(of: 99) == "unknown")
        #expect(catalog.conversion(of: 16436) == .number)
        #expect(catalog.conversion(of: 1007) == .array(.number, delimiter: UInt8(ascii: ",")))
        #expect(catalog.conversion(of: 99) == .string)
        #expect(PgTypeCatalog.entry(row: ["603", "box", "0", "0", ";"]) == .init(oid: 603, name: "box", delimiter: UInt8(ascii: ";")))
        #expect(PgTypeCatalog.entry(row: ["x", "box", "0", "0", ";"]) == nil)
    }
}

@Suite("Value conversion")
struct ValueConversionTests {
    @Test func numbers() {
        for text in ["0", "-1", "1.50", "1e+100", "-0", "1.5e-07", "12345678901234567890.123456789"] {
            #expect(ValueConversion.number.json(text) == .number(text))
        }
        for text in ["NaN", "Infinity", "-Infinity", "01", "1.", ".5", "1e", "+1", ""] {
            #expect(ValueConversion.number.json(text) == .string(text))
        }
    }

    @Test func booleansAndJSON() {
        #expect(ValueConversion.bool.json("t") == true)
        #expect(ValueConversion.bool.json("f") == false)
        #expect(ValueConversion.json.json(#"{"a": [1, 2.50]}"#) == ["a": [1, .number("2.50")]])
        #expect(ValueConversion.json.json("not json") == "not json")
    }

    @Test func timestamps() {
        #expect(ValueConversion.timestamp.json("2026-01-01 10:00:00") == "2026-01-01T10:00:00")
        #expect(ValueConversion.timestamp.json("2026-01-01 10:00:00.5") == "2026-01-01T10:00:00.5")
        #expect(ValueConversion.timestamp.json("infinity") == "infinity")
        #expect(ValueConversion.timestamptz.json("2026-01-01 10:00:00+00") == "2026-01-01T10:00:00+00:00")
        #expect(ValueConversion.timestamptz.json("2026-01-01 10:00:00-03:30") == "2026-01-01T10:00:00-03:30")
        #expect(ValueConversion.timestamptz.json("1850-01-01 10:00:00+00:09:21") == "1850-01-01T10:00:00+00:09:21")
        #expect(ValueConversion.timestamptz.json("0044-03-15 10:00:00+00 BC") == "0044-03-15T10:00:00+00:00 BC")
        #expect(ValueConversion.timestamptz.json("-infinity") == "-infinity")
    }

    @Test func arrays() {
        let ints = ValueConversion.array(.number, delimiter: UInt8(ascii: ","))
        #expect(ints.json("{}") == [])
        #expect(ints.json("{1,NULL,3}") == [1, nil, 3])
        #expect(ints.json("{{{1},{2}},{{3},{4}}}") == [[[1], [2]], [[3], [4]]])
        #expect(ints.json("[2:3]={5,6}") == [5, 6])
        let texts = ValueConversion.array(.string, delimiter: UInt8(ascii: ","))
        #expect(texts.json(#"{"a b","",NULL,"NULL","q\"x"}"#) == ["a b", "", nil, "NULL", "q\"x"])
        let stamps = ValueConversion.array(.timestamptz, delimiter: UInt8(ascii: ","))
        #expect(stamps.json(#"{"2026-01-01 10:00:00+00"}"#) == ["2026-01-01T10:00:00+00:00"])
        let boxes = ValueConversion.array(.string, delimiter: UInt8(ascii: ";"))
        #expect(boxes.json("{(1,1),(0,0)}") == "{(1,1),(0,0)}")
        #expect(ints.json("{1,{2}}") == "{1,{2}}")
    }
}

@Suite("Standby feedback")
struct StandbyFeedbackTests {
    let start = ContinuousClock.now

    @Test func confirmsOnlyWhatTheConsumerAcknowledged() {
        var feedback = StandbyFeedback()
        #expect(feedback.confirmable(acknowledged: LSN(10), deliveredThrough: LSN(20), isInTransaction: false) == LSN(10))
        feedback.keepalive(walEnd: LSN(50), isInTransaction: false)
        #expect(feedback.confirmable(acknowledged: LSN(10), deliveredThrough: LSN(20), isInTransaction: false) == LSN(10))
        #expect(feedback.confirmable(acknowledged: LSN(20), deliveredThrough: LSN(20), isInTransaction: false) == LSN(50))
        #expect(feedback.confirmable(acknowledged: LSN(20), deliveredThrough: LSN(20), isInTransaction: true) == LSN(20))
        // Keepalives inside a transaction may point past its commit: they do not count.
        feedback.keepalive(walEnd: LSN(90), isInTransaction: true)
        #expect(feedback.confirmable(acknowledged: LSN(20), deliveredThrough: LSN(20), isInTransaction: false) == LSN(50))
    }

    @Test func sendsAtOnceThenOnProgressOrInterval() {
        var feedback = StandbyFeedback(interval: .seconds(10), minimumInterval: .seconds(1))
        #expect(feedback.update(confirmable: LSN(1), replyRequested: false, now: start, postgresClock: 7)?.flushed == LSN(1))
        #expect(feedback.update(confirmable: LSN(1), replyRequested: false, now: start + .seconds(5), postgresClock: 7) == nil)
        #expect(feedback.update(confirmable: LSN(2), replyRequested: false, now: start + .milliseconds(500), postgresClock: 7) == nil)
        #expect(feedback.update(confirmable: LSN(2), replyRequested: false, now: start + .seconds(2), postgresClock: 7)?.flushed == LSN(2))
        #expect(feedback.update(confirmable: LSN(2), replyRequested: true, now: start + .seconds(2), postgresClock: 7) != nil)
        #expect(feedback.update(confirmable: LSN(2), replyRequested: false, now: start + .seconds(12), postgresClock: 7) != nil)
        feedback.reset()
        #expect(feedback.update(confirmable: LSN(2), replyRequested: false, now: start + .seconds(12), postgresClock: 7) != nil)
    }
}
