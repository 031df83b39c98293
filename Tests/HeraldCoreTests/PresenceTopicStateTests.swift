import HeraldCore
import Testing

@Suite struct PresenceTopicStateTests {
    private let alice = PresenceOwner(rawValue: 1)
    private let bob = PresenceOwner(rawValue: 2)

    // MARK: Wire shapes (reference §5.2)

    @Test func firstTrackIsAJoin() throws {
        var presence = PresenceTopicState()
        let outcome = presence.track(owner: alice, key: "user-1", payload: ["status": "online"], ref: "F3g3At6RfjDNKo5n")
        #expect(outcome == .joined)
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(diff.jsonString == #"{"joins":{"user-1":{"metas":[{"phx_ref":"F3g3At6RfjDNKo5n","status":"online"}]}},"leaves":{}}"#)
        #expect(presence.state.jsonString == #"{"user-1":{"metas":[{"phx_ref":"F3g3At6RfjDNKo5n","status":"online"}]}}"#)
        let nextDiff = presence.flushDiff()
        #expect(nextDiff == nil)
    }

    @Test func reTrackWithANewPayloadIsALeaveAndAJoinWithPreviousRef() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "user-1", payload: ["status": "online"], ref: "F3g3At6RfjDNKo5n")
        _ = presence.flushDiff()
        let outcome = presence.track(owner: alice, key: "user-1", payload: ["status": "away"], ref: "F3g3A5Sb9ynNKjbE")
        #expect(outcome == .updated)
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(
            diff.jsonString
                == #"{"joins":{"user-1":{"metas":[{"phx_ref":"F3g3A5Sb9ynNKjbE","phx_ref_prev":"F3g3At6RfjDNKo5n","status":"away"}]}},"#
                + #""leaves":{"user-1":{"metas":[{"phx_ref":"F3g3At6RfjDNKo5n","status":"online"}]}}}"#
        )
        #expect(
            presence.state.jsonString
                == #"{"user-1":{"metas":[{"phx_ref":"F3g3A5Sb9ynNKjbE","phx_ref_prev":"F3g3At6RfjDNKo5n","status":"away"}]}}"#
        )
    }

    @Test func untrackIsALeave() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "user-1", payload: ["status": "online"], ref: "r1")
        _ = presence.flushDiff()
        let removed = presence.untrack(owner: alice)
        #expect(removed)
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(diff.jsonString == #"{"joins":{},"leaves":{"user-1":{"metas":[{"phx_ref":"r1","status":"online"}]}}}"#)
        #expect(presence.state.jsonString == "{}")
        #expect(presence.isEmpty)
    }

    @Test func untrackingAnOwnerWithoutMetaChangesNothing() {
        var presence = PresenceTopicState()
        let removed = presence.untrack(owner: alice)
        #expect(!removed)
        #expect(!presence.hasPendingDiff)
        let nextDiff = presence.flushDiff()
        #expect(nextDiff == nil)
    }

    @Test func identicalPayloadIsANoOpEvenWithMembersReordered() {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "user-1", payload: ["a": 1, "b": ["x": true, "y": [1, 2]]], ref: "r1")
        _ = presence.flushDiff()
        let outcome = presence.track(owner: alice, key: "user-1", payload: ["a": 1, "b": ["x": true, "y": [1, 2]]], ref: "r2")
        #expect(outcome == .unchanged)
        let outcome2 = presence.track(owner: alice, key: "user-1", payload: ["b": ["y": [1, 2], "x": true], "a": 1], ref: "r3")
        #expect(outcome2 == .unchanged)
        let outcome3 = presence.track(owner: alice, key: "user-1", payload: ["b": ["y": [2, 1], "x": true], "a": 1], ref: "r4")
        #expect(outcome3 == .updated)
        #expect(presence.hasPendingDiff)
    }

    @Test func severalOwnersWithTheSameKeyAreSeveralMetas() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "shared", payload: ["device": "phone"], ref: "r1")
        presence.track(owner: bob, key: "shared", payload: ["device": "laptop"], ref: "r2")
        let joinsPayload = presence.flushDiff()
        let joins = try #require(joinsPayload)
        #expect(
            joins.jsonString
                == #"{"joins":{"shared":{"metas":[{"phx_ref":"r1","device":"phone"},{"phx_ref":"r2","device":"laptop"}]}},"leaves":{}}"#
        )
        #expect(presence.state.jsonString == #"{"shared":{"metas":[{"phx_ref":"r1","device":"phone"},{"phx_ref":"r2","device":"laptop"}]}}"#)

        presence.untrack(owner: alice)
        let leavesPayload = presence.flushDiff()
        let leaves = try #require(leavesPayload)
        #expect(leaves.jsonString == #"{"joins":{},"leaves":{"shared":{"metas":[{"phx_ref":"r1","device":"phone"}]}}}"#)
        #expect(presence.state.jsonString == #"{"shared":{"metas":[{"phx_ref":"r2","device":"laptop"}]}}"#)
    }

    @Test func trackingUnderAnotherKeyMovesTheMeta() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "old", payload: ["s": 1], ref: "r1")
        _ = presence.flushDiff()
        let outcome = presence.track(owner: alice, key: "new", payload: ["s": 1], ref: "r2")
        #expect(outcome == .joined)
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(diff.jsonString == #"{"joins":{"new":{"metas":[{"phx_ref":"r2","s":1}]}},"leaves":{"old":{"metas":[{"phx_ref":"r1","s":1}]}}}"#)
    }

    @Test func reservedRefMembersOfThePayloadAreDropped() {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "k", payload: ["phx_ref": "forged", "name": "a", "phx_ref_prev": "x"], ref: "r1")
        #expect(presence.state.jsonString == #"{"k":{"metas":[{"phx_ref":"r1","name":"a"}]}}"#)
    }

    // MARK: Batching

    @Test func aJoinAndItsLeaveInOneBatchCancelOut() {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "user-1", payload: ["s": 1], ref: "r1")
        presence.track(owner: alice, key: "user-1", payload: ["s": 2], ref: "r2")
        presence.untrack(owner: alice)
        #expect(!presence.hasPendingDiff)
        let nextDiff = presence.flushDiff()
        #expect(nextDiff == nil)
        #expect(presence.isEmpty)
    }

    @Test func cancelledJoinsDoNotHideOtherChangesOfTheBatch() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "a", payload: [:], ref: "r1")
        presence.track(owner: bob, key: "b", payload: [:], ref: "r2")
        presence.untrack(owner: alice)
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(diff.jsonString == #"{"joins":{"b":{"metas":[{"phx_ref":"r2"}]}},"leaves":{}}"#)
    }

    @Test func updatesInOneBatchReportTheOriginalLeaveAndTheFinalJoin() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "user-1", payload: ["s": "a"], ref: "r1")
        _ = presence.flushDiff()
        presence.track(owner: alice, key: "user-1", payload: ["s": "b"], ref: "r2")
        presence.track(owner: alice, key: "user-1", payload: ["s": "c"], ref: "r3")
        presence.track(owner: alice, key: "user-1", payload: ["s": "d"], ref: "r4")
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(
            diff.jsonString
                == #"{"joins":{"user-1":{"metas":[{"phx_ref":"r4","phx_ref_prev":"r1","s":"d"}]}},"#
                + #""leaves":{"user-1":{"metas":[{"phx_ref":"r1","s":"a"}]}}}"#
        )
    }

    @Test func aJoinUpdatedInItsOwnBatchIsAPlainJoin() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "user-1", payload: ["s": "a"], ref: "r1")
        presence.track(owner: alice, key: "user-1", payload: ["s": "b"], ref: "r2")
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(diff.jsonString == #"{"joins":{"user-1":{"metas":[{"phx_ref":"r2","s":"b"}]}},"leaves":{}}"#)
    }

    @Test func untrackThenTrackInOneBatchIsALeaveAndAFreshJoin() throws {
        var presence = PresenceTopicState()
        presence.track(owner: alice, key: "user-1", payload: ["s": "a"], ref: "r1")
        _ = presence.flushDiff()
        presence.untrack(owner: alice)
        let outcome = presence.track(owner: alice, key: "user-1", payload: ["s": "a"], ref: "r2")
        #expect(outcome == .joined)
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        #expect(
            diff.jsonString
                == #"{"joins":{"user-1":{"metas":[{"phx_ref":"r2","s":"a"}]}},"leaves":{"user-1":{"metas":[{"phx_ref":"r1","s":"a"}]}}}"#
        )
    }

    @Test func publishedStateIsWhatMembersHaveSeen() throws {
        var state = PresenceTopicState()
        state.track(owner: PresenceOwner(rawValue: 1), key: "a", payload: ["v": 1], ref: "r1")
        state.track(owner: PresenceOwner(rawValue: 2), key: "b", payload: [:], ref: "r2")
        _ = state.flushDiff()
        // In the next batch: a joins anew (update), b leaves, c joins.
        state.track(owner: PresenceOwner(rawValue: 1), key: "a", payload: ["v": 2], ref: "r3")
        state.untrack(owner: PresenceOwner(rawValue: 2))
        state.track(owner: PresenceOwner(rawValue: 3), key: "c", payload: [:], ref: "r4")
        let seen = state.publishedState
        #expect(seen["a"]?["metas"]?.arrayValue?.map { $0["phx_ref"] } == ["r1"])
        #expect(seen["b"]?["metas"]?.arrayValue?.map { $0["phx_ref"] } == ["r2"])
        #expect(seen["c"] == nil)
        _ = state.flushDiff()
        func byKey(_ value: JSONValue) -> [String: JSONValue] {
            Dictionary(uniqueKeysWithValues: (value.objectValue?.members ?? []).map { ($0.key, $0.value) })
        }
        #expect(byKey(state.publishedState) == byKey(state.state))
    }

    @Test func aJoinStormIsOneDiff() throws {
        var presence = PresenceTopicState()
        let members = 10_000
        for index in 0..<members {
            presence.track(owner: PresenceOwner(rawValue: UInt64(index)), key: "user-\(index)", payload: ["n": .int(index)], ref: "r\(index)")
        }
        let diffPayload = presence.flushDiff()
        let diff = try #require(diffPayload)
        let joins = presenceMap(diff["joins"])
        #expect(joins.count == members)
        #expect(joins["user-42"]?["r42"] == ["phx_ref": "r42", "n": 42])
        #expect(presenceMap(diff["leaves"]).isEmpty)
        // Diff keys keep the order of the operations.
        #expect(diff["joins"]?.objectValue?.keys.prefix(3) == ["user-0", "user-1", "user-2"])
        let nextDiff = presence.flushDiff()
        #expect(nextDiff == nil)
    }

    // MARK: Against a model

    /// Random operations on 30 owners; after each flush, a member that applied every diff the way
    /// clients do holds exactly the server's state, and the state always equals a naive model.
    @Test(arguments: [1, 2, 3, 4] as [UInt64])
    func matchesABruteForceModel(seed: UInt64) throws {
        var random = SplitMixRandom(seed: seed)
        var presence = PresenceTopicState()
        var model: [PresenceOwner: (key: String, payload: JSONObject, ref: String)] = [:]
        var client: PresenceMap = [:]
        let payloads: [JSONObject] = [["s": "a"], ["s": "b"], ["s": "a", "n": 1], ["n": 1, "s": "a"], [:]]
        var nextRef = 0

        for _ in 0..<4_000 {
            let owner = PresenceOwner(rawValue: UInt64.random(in: 0..<30, using: &random))
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<6:
                let key = Int.random(in: 0..<10, using: &random) == 0 ? "roaming" : "user-\(owner.rawValue % 8)"
                let payload = payloads.randomElement(using: &random) ?? [:]
                nextRef += 1
                let ref = "r\(nextRef)"
                let expected: PresenceTrackResult
                if let current = model[owner], current.key == key {
                    expected = unordered(current.payload) == unordered(payload) ? .unchanged : .updated
                } else {
                    expected = .joined
                }
                let outcome = presence.track(owner: owner, key: key, payload: payload, ref: ref)
                #expect(outcome == expected)
                if expected != .unchanged { model[owner] = (key, payload, ref) }
            case 6..<8:
                let removed = presence.untrack(owner: owner)
                #expect(removed == (model.removeValue(forKey: owner) != nil))
            default:
                try flush(&presence, into: &client)
            }
            #expect(withoutRefs(presenceMap(presence.state)) == modelState(model))
        }
        try flush(&presence, into: &client)
        #expect(client == presenceMap(presence.state))
    }

    private func flush(_ presence: inout PresenceTopicState, into client: inout PresenceMap) throws {
        guard let diff = presence.flushDiff() else {
            #expect(client == presenceMap(presence.state))
            return
        }
        let joins = presenceMap(diff["joins"])
        let leaves = presenceMap(diff["leaves"])
        #expect(!joins.isEmpty || !leaves.isEmpty)
        for (key, metas) in joins {
            for (ref, meta) in metas {
                #expect(client[key]?[ref] == nil, "join of a meta the client already has")
                #expect(leaves[key]?[ref] == nil, "phantom join and leave")
                if let previous = meta["phx_ref_prev"]?.stringValue {
                    #expect(leaves[key]?[previous] != nil, "phx_ref_prev names a meta that is not leaving")
                }
            }
        }
        for (key, metas) in leaves {
            for ref in metas.keys {
                #expect(client[key]?[ref] != nil, "leave of a meta the client never had")
            }
        }
        applyPresenceDiff(diff, to: &client)
        #expect(client == presenceMap(presence.state))
    }

    private func unordered(_ payload: JSONObject) -> [String: JSONValue] {
        Dictionary(uniqueKeysWithValues: payload.members.map { ($0.key, $0.value) })
    }

    /// key → ref → tracked payload (server-owned members removed).
    private func withoutRefs(_ map: PresenceMap) -> [String: [String: JSONObject]] {
        map.mapValues { metas in
            metas.mapValues { meta in
                JSONObject((meta.objectValue?.members ?? []).filter { $0.key != "phx_ref" && $0.key != "phx_ref_prev" })
            }
        }
    }

    private func modelState(_ model: [PresenceOwner: (key: String, payload: JSONObject, ref: String)]) -> [String: [String: JSONObject]] {
        var state: [String: [String: JSONObject]] = [:]
        for entry in model.values { state[entry.key, default: [:]][entry.ref] = entry.payload }
        return state
    }
}
