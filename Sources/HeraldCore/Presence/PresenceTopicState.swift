/// Who tracked a presence meta: one channel of one socket. Opaque to presence.
public struct PresenceOwner: Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
}

/// What a `track` did to the topic's presence.
public enum PresenceTrackResult: Sendable, Hashable {
    /// The owner had no meta (or had one under another key, which left): a new meta joined.
    case joined
    /// The payload changed: the old meta left and a new one (with `phx_ref_prev`) joined.
    case updated
    /// Same payload as the owner's current meta: nothing happened (the client still gets `ok`).
    case unchanged
}

/// The presence of one topic: key → metas, each meta owned by one channel (at most one meta per owner),
/// plus the diff accumulated since the last `flushDiff()`.
///
/// Batching: operations only record what changed; the server calls `flushDiff()` every few milliseconds
/// and fans the result out, so a storm of N joins becomes a few diffs instead of N. Inside a batch, a
/// meta that joins and then leaves cancels out, and a chain of updates reports only the meta clients last
/// saw (in `leaves`) and the final one (in `joins`).
///
/// Costs: `track`/`untrack` are O(metas under that key); `state` and `flushDiff` are O(their output).
/// Send a new member `state` only after flushing, or it would receive joins it already has.
public struct PresenceTopicState: Sendable {
    private struct Meta: Sendable {
        var owner: PresenceOwner
        var ref: String
        var previousRef: String?
        var payload: JSONObject
        /// The batch in which this meta joined, and its slot in `pendingJoins` (valid in that batch only).
        var joinBatch: UInt64 = 0
        var joinSlot = 0

        /// `{"phx_ref":…,["phx_ref_prev":…,]…payload…}`: Phoenix's order (its atom keys sort first).
        var json: JSONValue {
            var members: [JSONObject.Member] = []
            members.reserveCapacity(payload.count + 2)
            members.append(.init(key: "phx_ref", value: .string(ref)))
            if let previousRef {
                members.append(.init(key: "phx_ref_prev", value: .string(previousRef)))
            }
            members.append(contentsOf: payload.members)
            return .object(JSONObject(members))
        }
    }

    private struct PendingMeta: Sendable {
        var key: String
        var meta: Meta
    }

    private var metasByKey: [String: [Meta]] = [:]
    private var keyByOwner: [PresenceOwner: String] = [:]
    /// Numbers batches so "joined in this batch" is one comparison; starts at 1 so 0 means "never".
    private var batch: UInt64 = 1
    /// Joins of this batch in order; a slot becomes nil when its meta leaves in the same batch.
    private var pendingJoins: [PendingMeta?] = []
    private var pendingJoinCount = 0
    /// Metas that existed before this batch and left during it.
    private var pendingLeaves: [PendingMeta] = []

    public init() {}

    /// No meta is tracked (there may still be a pending diff to flush).
    public var isEmpty: Bool { keyByOwner.isEmpty }

    /// `flushDiff()` would return a diff.
    public var hasPendingDiff: Bool { pendingJoinCount > 0 || !pendingLeaves.isEmpty }

    /// Tracks `payload` under `key` for `owner` (client `track`).
    /// - Parameter ref: the `phx_ref` for the new meta, if one joins (unused when `.unchanged`).
    ///   `phx_ref` and `phx_ref_prev` members of `payload` are dropped: the server owns those names.
    @discardableResult
    public mutating func track(owner: PresenceOwner, key: String, payload: JSONObject, ref: String) -> PresenceTrackResult {
        let payload = Self.withoutReservedMembers(payload)
        if let currentKey = keyByOwner[owner] {
            if currentKey == key, let index = metasByKey[key]?.firstIndex(where: { $0.owner == owner }),
                let old = metasByKey[key]?[index]
            {
                if old.payload.hasSameContent(as: payload) { return .unchanged }
                recordLeave(key: key, meta: old)
                // Point at the meta clients last saw: one that joined in this batch was never sent.
                let previousRef = isPendingJoin(old) ? old.previousRef : old.ref
                var new = Meta(owner: owner, ref: ref, previousRef: previousRef, payload: payload)
                recordJoin(key: key, meta: &new)
                metasByKey[key]?[index] = new
                return .updated
            }
            untrack(owner: owner)
        }
        var new = Meta(owner: owner, ref: ref, previousRef: nil, payload: payload)
        recordJoin(key: key, meta: &new)
        metasByKey[key, default: []].append(new)
        keyByOwner[owner] = key
        return .joined
    }

    /// Removes `owner`'s meta (client `untrack`, `phx_leave`, channel or socket gone).
    /// Returns false when the owner tracked nothing.
    @discardableResult
    public mutating func untrack(owner: PresenceOwner) -> Bool {
        guard let key = keyByOwner.removeValue(forKey: owner),
            let index = metasByKey[key]?.firstIndex(where: { $0.owner == owner }),
            let old = metasByKey[key]?.remove(at: index)
        else { return false }
        if metasByKey[key]?.isEmpty == true {
            metasByKey[key] = nil
        }
        recordLeave(key: key, meta: old)
        return true
    }

    /// The `presence_state` payload: `{"<key>":{"metas":[{"phx_ref":…,…tracked fields…}]}}`.
    public var state: JSONValue {
        var members: [JSONObject.Member] = []
        members.reserveCapacity(metasByKey.count)
        for (key, metas) in metasByKey {
            members.append(JSONObject.Member(key: key, value: Self.entry(metas.map(\.json))))
        }
        return .object(JSONObject(members))
    }

    /// The presence the topic's members have seen: the state as of the last `flushDiff()`. A member joining
    /// mid-batch gets this, then the pending diff together with everyone else, so it neither misses nor repeats a
    /// change, and a join storm stays batched (no flush per join).
    public var publishedState: JSONValue {
        var metas: [String: [JSONValue]] = [:]
        for (key, current) in metasByKey {
            let seen = current.filter { !isPendingJoin($0) }
            if !seen.isEmpty { metas[key] = seen.map(\.json) }
        }
        for leave in pendingLeaves { metas[leave.key, default: []].append(leave.meta.json) }
        return .object(JSONObject(metas.map { JSONObject.Member(key: $0.key, value: Self.entry($0.value)) }))
    }

    /// The `presence_diff` payload `{"joins":{…},"leaves":{…}}` for everything since the last flush,
    /// or nil when nothing changed on balance. Starts a new batch either way.
    public mutating func flushDiff() -> JSONValue? {
        defer {
            pendingJoins = []
            pendingJoinCount = 0
            pendingLeaves = []
            batch += 1
        }
        guard hasPendingDiff else { return nil }
        let joins = Self.group(pendingJoins.lazy.compactMap { $0 })
        let leaves = Self.group(pendingLeaves)
        return .object(JSONObject([.init(key: "joins", value: .object(joins)), .init(key: "leaves", value: .object(leaves))]))
    }

    // MARK: Batch bookkeeping

    private func isPendingJoin(_ meta: Meta) -> Bool { meta.joinBatch == batch }

    private mutating func recordJoin(key: String, meta: inout Meta) {
        meta.joinBatch = batch
        meta.joinSlot = pendingJoins.count
        pendingJoins.append(PendingMeta(key: key, meta: meta))
        pendingJoinCount += 1
    }

    private mutating func recordLeave(key: String, meta: Meta) {
        if isPendingJoin(meta) {
            pendingJoins[meta.joinSlot] = nil
            pendingJoinCount -= 1
        } else {
            pendingLeaves.append(PendingMeta(key: key, meta: meta))
        }
    }

    // MARK: JSON

    private static func withoutReservedMembers(_ payload: JSONObject) -> JSONObject {
        guard payload.contains("phx_ref") || payload.contains("phx_ref_prev") else { return payload }
        return JSONObject(payload.members.filter { $0.key != "phx_ref" && $0.key != "phx_ref_prev" })
    }

    private static func entry(_ metas: [JSONValue]) -> JSONValue {
        .object(JSONObject([.init(key: "metas", value: .array(metas))]))
    }

    /// Groups metas by key, keys in order of first appearance.
    private static func group(_ pending: some Sequence<PendingMeta>) -> JSONObject {
        var keys: [String] = []
        var metasByKey: [String: [JSONValue]] = [:]
        for item in pending {
            if metasByKey[item.key] == nil { keys.append(item.key) }
            metasByKey[item.key, default: []].append(item.meta.json)
        }
        return JSONObject(keys.map { JSONObject.Member(key: $0, value: entry(metasByKey[$0] ?? [])) })
    }
}
