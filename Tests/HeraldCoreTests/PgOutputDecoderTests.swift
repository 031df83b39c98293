import HeraldCore
import Testing

/// Bytes from hex text, ignoring whitespace.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = text.utf8.filter { !$0.isWhitespaceByte }.map { byte -> UInt8 in
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        default: 0xFF
        }
    }
    return stride(from: 0, to: digits.count - 1, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
}

extension UInt8 {
    fileprivate var isWhitespaceByte: Bool { self == 0x20 || self == 0x0A }
}

func decode(_ hex: String, inStreamBlock: Bool = false) throws -> PgOutputMessage {
    try PgOutputMessage.decode(hexBytes(hex)[...], inStreamBlock: inStreamBlock)
}

@Suite("pgoutput decoder")
struct PgOutputDecoderTests {
    typealias F = PgOutputFixtures

    @Test func beginAndCommit() throws {
        #expect(
            try decode(F.beginKinds1)
                == .begin(.init(finalLSN: LSN(0x1A0_0560), commitTime: 0x0003_0464_5DF4_6A4F, transactionID: 0x2FC))
        )
        #expect(
            try decode(F.commitKinds1)
                == .commit(.init(flags: 0, commitLSN: LSN(0x1A0_0560), endLSN: LSN(0x1A0_0590), commitTime: 0x0003_0464_5DF4_6A4F))
        )
    }

    @Test func typeMessagesNameTheBaseTypeOfADomain() throws {
        #expect(try decode(F.typeMood) == .type(.init(oid: 16430, namespace: "public", name: "mood")))
        #expect(try decode(F.typePosint) == .type(.init(oid: 16436, namespace: "pg_catalog", name: "int4")))
    }

    @Test func relation() throws {
        guard case .relation(let kinds) = try decode(F.relationKinds) else {
            Issue.record("not a relation")
            return
        }
        #expect(kinds.id == 0x4036 && kinds.namespace == "public" && kinds.name == "kinds")
        #expect(kinds.replicaIdentity == .default)
        #expect(kinds.columns.count == 29)
        #expect(kinds.columns[0] == .init(isKey: true, name: "id", typeOID: 23, typeModifier: -1))
        #expect(kinds.columns[5] == .init(isKey: false, name: "n2", typeOID: 1700, typeModifier: 0x000A_0006))
        #expect(kinds.columns.filter(\.isKey).map(\.name) == ["id"])
        guard case .relation(let audit) = try decode(F.relationAudit) else {
            Issue.record("not a relation")
            return
        }
        #expect(audit.replicaIdentity == .full)
        #expect(audit.columns.map(\.isKey) == [true, true])
    }

    @Test func tupleValues() throws {
        guard case .insert(let insert) = try decode(F.insertKinds2) else {
            Issue.record("not an insert")
            return
        }
        #expect(insert.relationID == 0x4036)
        #expect(insert.newTuple.count == 29)
        #expect(insert.newTuple[0] == .text("2"))
        #expect(insert.newTuple[1] == .null)
        #expect(insert.newTuple[6] == .text("NaN"))
        guard case .update(let update) = try decode(F.updatePeopleUnchangedToast) else {
            Issue.record("not an update")
            return
        }
        #expect(update.oldTuple == nil)
        #expect(update.newTuple == [.text("2"), .text("Bobby"), .unchangedToast])
    }

    @Test func updateAndDeleteOldTuples() throws {
        #expect(
            try decode(F.updatePeopleKeyChanged)
                == .update(.init(relationID: 0x403F, oldTuple: .key([.text("2"), .null, .null]), newTuple: [.text("3"), .text("Bobby"), .unchangedToast]))
        )
        #expect(try decode(F.deletePeople) == .delete(.init(relationID: 0x403F, oldTuple: .key([.text("3"), .null, .null]))))
        let longNote = String(repeating: "y", count: 3000)
        #expect(
            try decode(F.updateAuditFull)
                == .update(.init(relationID: 0x4046, oldTuple: .full([.text("1"), .text(longNote)]), newTuple: [.text("2"), .text(longNote)]))
        )
        let body = String(repeating: "z", count: 3000)
        #expect(
            try decode(PgOutputFixtures.updateNotesFull)
                == .update(.init(relationID: 0x4058, oldTuple: .full([.text("1"), .text(body), .text("a")]), newTuple: [.text("1"), .unchangedToast, .text("b")]))
        )
        #expect(try decode(F.deleteAuditFull) == .delete(.init(relationID: 0x4046, oldTuple: .full([.text("2"), .text(longNote)]))))
    }

    @Test func truncateOriginAndMessages() throws {
        #expect(try decode(F.truncateAuditPeople) == .truncate(.init(options: 3, relationIDs: [0x4046, 0x403F])))
        #expect(try decode(F.originMessage) == .origin(.init(commitLSN: LSN(0xAB), name: "origin1")))
        #expect(
            try decode(F.messageTransactional)
                == .message(.init(isTransactional: true, lsn: LSN(0x1A0_3628), prefix: "herald", content: Array("hello".utf8)))
        )
        #expect(
            try decode(F.messageNonTransactional)
                == .message(.init(isTransactional: false, lsn: LSN(0x1A0_3690), prefix: "nt", content: [0x00, 0xFF]))
        )
    }

    @Test func streamingMarkersOfVersion2() throws {
        #expect(try decode(F.streamStartFirst) == .streamStart(transactionID: 0x2EE, isFirstSegment: true))
        guard case .streamed(0x2EE, .relation(let relation)) = try decode(F.streamedRelationAudit, inStreamBlock: true) else {
            Issue.record("not a streamed relation")
            return
        }
        #expect(relation.name == "audit")
        #expect(
            try decode(F.streamedInsertAudit, inStreamBlock: true)
                == .streamed(transactionID: 0x2EE, .insert(.init(relationID: 0x4018, newTuple: [.text("100"), .text("row")])))
        )
        #expect(try decode(F.streamStop) == .streamStop)
        #expect(
            try decode(F.streamCommit)
                == .streamCommit(transactionID: 0x2EE, .init(flags: 0, commitLSN: LSN(0x158_3580), endLSN: LSN(0x158_35B0), commitTime: 0x0003_0464_4830_4ED7))
        )
        // Not captured (the SQL interface does not stream aborts): built from the documented layout.
        #expect(try decode("41000002ee000002f1") == .streamAbort(transactionID: 0x2EE, subtransactionID: 0x2F1))
    }

    @Test func malformedMessagesThrow() {
        #expect(throws: ReplicationDecodingError.self) { try decode("") }
        #expect(throws: ReplicationDecodingError.self) { try decode("5a") }
        #expect(throws: ReplicationDecodingError.self) { try decode(String(F.beginKinds1.dropLast(2))) }
        #expect(throws: ReplicationDecodingError.self) { try decode(F.beginKinds1 + "00") }
        // An insert whose text value claims more bytes than there are.
        #expect(throws: ReplicationDecodingError.self) { try decode("49000040464e0001740000ffff31") }
        // Binary values were not asked for.
        #expect(throws: ReplicationDecodingError.self) { try decode("49000040464e00016200000001ff") }
    }

    @Test func lsnText() {
        #expect(LSN("16/B374D848") == LSN(0x16_B374_D848))
        #expect(LSN(0x16_B374_D848).description == "16/B374D848")
        #expect(LSN.zero.description == "0/0")
        #expect(LSN("16") == nil && LSN("x/1") == nil && LSN("1/123456789") == nil)
    }
}

@Suite("Replication copy messages")
struct ReplicationCopyMessageTests {
    @Test func xLogDataCarriesAPgoutputMessage() throws {
        let bytes = hexBytes("77" + "00000000016b3f80" + "00000000016b4000" + "0003046447061234" + PgOutputFixtures.beginKinds1)
        guard case .xLogData(let data) = try ReplicationServerMessage.decode(bytes) else {
            Issue.record("not XLogData")
            return
        }
        #expect(data.start == LSN(0x16B_3F80) && data.walEnd == LSN(0x16B_4000) && data.sendTime == 0x0003_0464_4706_1234)
        #expect(Array(data.data) == hexBytes(PgOutputFixtures.beginKinds1))
        #expect(try PgOutputMessage.decode(data.data) == decode(PgOutputFixtures.beginKinds1))
    }

    @Test func keepalive() throws {
        #expect(
            try ReplicationServerMessage.decode(hexBytes("6b" + "00000000016b4000" + "0003046447061234" + "01"))
                == .keepalive(walEnd: LSN(0x16B_4000), sendTime: 0x0003_0464_4706_1234, replyRequested: true)
        )
        #expect(throws: ReplicationDecodingError.self) { try ReplicationServerMessage.decode(hexBytes("6b00")) }
        #expect(throws: ReplicationDecodingError.self) { try ReplicationServerMessage.decode(hexBytes("64")) }
    }

    @Test func standbyStatusUpdateLayout() {
        let update = StandbyStatusUpdate(written: LSN(0x1_0000_0002), flushed: LSN(3), applied: LSN(4), clock: 5, replyRequested: true)
        #expect(
            update.bytes
                == hexBytes("72" + "0000000100000002" + "0000000000000003" + "0000000000000004" + "0000000000000005" + "01")
        )
    }
}
