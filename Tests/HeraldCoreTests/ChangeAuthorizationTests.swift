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
            #"[{"rls": true, "errors": {}, "columns": {"authenticated": ["id"]}, "visible": [[0, 2], null], "primary_key": ["id"], "claim_keys": null, "stale": false},"#
                + #"{"rls": true, "errors": {}, "columns": {}, "visible": [[]], "primary_key": ["id"], "claim_keys": ["team"], "stale": true}]"#
        )
        #expect(parsed == [
            VisibilityAnswer(primaryKey: ["id"], rowSecurity: true, columnsByRole: ["authenticated": ["id"]], visible: [[0, 2], nil]),
            VisibilityAnswer(primaryKey: ["id"], rowSecurity: true, claimKeys: ["team"], stale: true, columnsByRole: [:], visible: [[]]),
        ])
        #expect(throws: (any Error).self) { try VisibilityAnswer.parse(#"{"not":"an array"}"#) }
    }

    func subscriber(_ role: String, _ claims: JSONObject) -> ClaimGroup {
        ClaimGroup(TokenClaims(role: role, expiresAt: 9, claims: claims))
    }

    @Test func subscribersAgreeingOnTheClaimsThePoliciesReadAreCheckedAsOneGroup() {
        let alice = subscriber("authenticated", ["sub": "alice", "team": "red", "exp": 9])
        let bob = subscriber("authenticated", ["team": "red", "sub": "bob"])
        let carol = subscriber("authenticated", ["sub": "carol", "team": "blue"])
        let visitor = subscriber("anon", ["team": "red"])
        let known = KnownTable(VisibilityAnswer(primaryKey: ["id"], rowSecurity: true, claimKeys: ["team"], columnsByRole: [:], visible: []))
        let requests = [
            AuthorizationRequest(index: 0, change: change(.insert), groups: [alice, carol, visitor]),
            AuthorizationRequest(index: 2, change: change(.update), groups: [bob]),
        ]
        let plan = AuthorizationPlan(requests) { $0 == #""public"."notes""# ? known : nil }
        #expect(plan.checks.count == 1)
        let check = plan.checks[0]
        #expect(check.claimKeys == ["team"])
        // Role first, then claims; alice and bob are one group.
        #expect(check.groups.map(\.role) == ["anon", "authenticated", "authenticated"])
        #expect(check.groups.map(\.claimsJSON) == [#"{"team":"red"}"#, #"{"team":"blue"}"#, #"{"team":"red"}"#])
        // Only the key travels once the key is known.
        #expect(check.keys == [["id": 1], ["id": 1]])
        #expect(VisibilityCheck.requestJSON([check]).contains(#""claim_keys":["team"]"#))
        #expect(!VisibilityCheck.requestJSON([check]).contains("xids"))
        let written = AuthorizationPlan([AuthorizationRequest(index: 0, change: { var c = change(.insert); c.transactionID = 7; return c }(), groups: [alice])]) { _ in known }
        #expect(VisibilityCheck.requestJSON(written.checks).contains(#""xids":[7]"#))

        // Group 2 (red) sees both rows, group 1 (blue) none.
        let answer = VisibilityAnswer(
            primaryKey: ["id"], rowSecurity: true, claimKeys: ["team"], columnsByRole: ["authenticated": ["id", "owner"], "anon": ["id"]],
            visible: [[], [], [0, 1]]
        )
        let decided = plan.decided(by: [answer])
        let first = decided.decision(for: change(.insert), at: 0)
        let second = decided.decision(for: change(.update), at: 2)
        #expect(decided.decision(for: change(.insert), at: 1) == nil)
        #expect(first?.admits(alice) == true && first?.admits(carol) == false)
        #expect(first?.admits(visitor) == false)
        #expect(second?.admits(bob) == true)
        // A subscriber the plan was not made for sees nothing.
        #expect(second?.admits(subscriber("authenticated", ["team": "green"])) == false)
    }

    @Test func anUnknownTableIsCheckedWithWholeClaimsAndWholeRows() {
        let alice = subscriber("authenticated", ["sub": "alice", "team": "red"])
        let bob = subscriber("authenticated", ["sub": "bob", "team": "red"])
        let plan = AuthorizationPlan([AuthorizationRequest(index: 0, change: change(.insert), groups: [alice, bob, alice])]) { _ in nil }
        #expect(plan.checks[0].claimKeys == nil)
        #expect(plan.checks[0].groups == [alice, bob])
        #expect(plan.checks[0].keys == [["id": 1, "owner": "alice", "secret": "s"]])
        #expect(!VisibilityCheck.requestJSON(plan.checks).contains("claim_keys"))
        // Claims the policies cannot be followed through: still one group per distinct set of claims.
        let opaque = KnownTable(VisibilityAnswer(primaryKey: ["id"], rowSecurity: true, claimKeys: nil, columnsByRole: [:], visible: []))
        let again = AuthorizationPlan([AuthorizationRequest(index: 0, change: change(.insert), groups: [alice, bob])]) { _ in opaque }
        #expect(again.checks[0].groups == [alice, bob] && again.checks[0].keys == [["id": 1]])
    }
}
