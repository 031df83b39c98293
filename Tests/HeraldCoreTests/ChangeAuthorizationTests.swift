import HeraldCore
import Testing

/// What a change looks like to each group of subscribers, from the database's answer (reference sections 3.3-3.6).
@Suite struct ChangeAuthorizationTests {
    let columns = [Column(name: "id", type: "int4"), Column(name: "owner", type: "text"), Column(name: "secret", type: "text")]

    func change(_ type: ChangeType) -> Change {
        Change(
            schema: "public", table: "notes", type: type, commitTimestamp: 0, columns: columns,
            record: type == .delete ? nil : ["id": 1, "owner": "alice", "secret": "s"],
            oldRecord: type == .insert ? nil : ["id": 1, "owner": "alice", "secret": "s"]
        )
    }

    func answer(rls: Bool, primaryKey: [String] = ["id"], visible: [Set<Int>?]) -> VisibilityAnswer {
        VisibilityAnswer(
            primaryKey: primaryKey, rowSecurity: rls,
            columnsByRole: ["authenticated": ["id", "owner"], "service_role": ["id", "owner", "secret"], "anon": ["owner"]],
            visible: visible
        )
    }

    @Test func rowSecurityDecidesPerGroupAndColumnsPerRole() throws {
        let authorized = AuthorizedChange(change: change(.insert), answer: answer(rls: true, visible: [[0], [], [0]]), keyIndex: 0)
        #expect(authorized.isVisible(toGroup: 0, role: "authenticated"))
        #expect(!authorized.isVisible(toGroup: 1, role: "authenticated"))
        #expect(authorized.isVisible(toGroup: 2, role: "service_role"))
        let data = authorized.data(role: "authenticated")
        #expect(data["record"] == .object(["id": 1, "owner": "alice"]))
        #expect(data["columns"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["id", "owner"])
        #expect(authorized.data(role: "service_role")["record"]?["secret"] == "s")
    }

    @Test func withoutRowSecurityEveryGroupSeesTheRow() {
        let authorized = AuthorizedChange(change: change(.update), answer: answer(rls: false, visible: [nil]), keyIndex: 0)
        #expect(authorized.isVisible(toGroup: 0, role: "authenticated"))
        #expect(authorized.data(role: "authenticated")["old_record"] == .object(["id": 1, "owner": "alice"]))
    }

    @Test func deletesAreNotCheckedAndKeepOnlyTheKeyUnderRowSecurity() {
        let authorized = AuthorizedChange(change: change(.delete), answer: answer(rls: true, visible: [[]]), keyIndex: nil)
        #expect(authorized.isVisible(toGroup: 0, role: "authenticated"))
        let data = authorized.data(role: "authenticated")
        #expect(data["old_record"] == .object(["id": 1]))
        #expect(data.contains("record") == false)
    }

    @Test func unselectableKeyAndMissingKeyAreTheReferenceErrors() {
        let unauthorized = AuthorizedChange(change: change(.insert), answer: answer(rls: true, visible: [[]]), keyIndex: 0).data(role: "anon")
        #expect(unauthorized["errors"] == .array(["Error 401: Unauthorized"]))
        #expect(unauthorized["record"] == .object([:]) && unauthorized["commit_timestamp"] == .null && unauthorized["columns"] == .array([]))
        #expect(unauthorized.keys == ["schema", "table", "type", "commit_timestamp", "columns", "record", "errors"])
        let keyless = AuthorizedChange(change: change(.update), answer: answer(rls: false, primaryKey: [], visible: [nil]), keyIndex: nil)
        #expect(keyless.data(role: "authenticated")["errors"] == .array(["Error 400: Bad Request, no primary key"]))
        #expect(keyless.isVisible(toGroup: 0, role: "authenticated"))
        // A keyless table's deletes are ordinary events.
        let keylessDelete = AuthorizedChange(change: change(.delete), answer: answer(rls: false, primaryKey: [], visible: [nil]), keyIndex: nil)
        #expect(keylessDelete.data(role: "authenticated")["errors"] == .null)
    }

    @Test func requestAndAnswerJSON() throws {
        let group = ClaimGroup(TokenClaims(role: "authenticated", expiresAt: 9, claims: ["sub": "alice", "role": "authenticated"]))
        let check = VisibilityCheck(schema: "odd \"schema\"", table: "t", keys: [["id": 1]], groups: [group])
        #expect(
            VisibilityCheck.requestJSON([check])
                == #"[{"entity":"\"odd \"\"schema\"\"\".\"t\"","keys":[{"id":1}],"groups":[{"role":"authenticated","claims":{"sub":"alice","role":"authenticated"}}]}]"#
        )
        let parsed = try VisibilityAnswer.parse(
            #"[{"rls": true, "errors": {}, "columns": {"authenticated": ["id"]}, "visible": [[0, 2], null], "primary_key": ["id"]}]"#
        )
        #expect(parsed == [VisibilityAnswer(primaryKey: ["id"], rowSecurity: true, columnsByRole: ["authenticated": ["id"]], visible: [[0, 2], nil])])
        #expect(throws: (any Error).self) { try VisibilityAnswer.parse(#"{"not":"an array"}"#) }
    }
}
