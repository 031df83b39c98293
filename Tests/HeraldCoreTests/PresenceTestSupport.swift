import HeraldCore

/// Presence JSON as clients hold it: key → phx_ref → meta. Independent of key and meta order.
typealias PresenceMap = [String: [String: JSONValue]]

/// Reads a `presence_state` payload, or the `joins`/`leaves` half of a `presence_diff`.
func presenceMap(_ value: JSONValue?) -> PresenceMap {
    var map: PresenceMap = [:]
    for member in value?.objectValue?.members ?? [] {
        var metas: [String: JSONValue] = [:]
        for meta in member.value["metas"]?.arrayValue ?? [] {
            metas[meta["phx_ref"]?.stringValue ?? ""] = meta
        }
        map[member.key] = metas
    }
    return map
}

/// Applies a `presence_diff` the way phoenix-js / realtime-js `syncDiff` do (joins, then leaves by ref).
func applyPresenceDiff(_ diff: JSONValue, to state: inout PresenceMap) {
    for (key, metas) in presenceMap(diff["joins"]) {
        state[key, default: [:]].merge(metas) { _, new in new }
    }
    for (key, metas) in presenceMap(diff["leaves"]) {
        for ref in metas.keys { state[key]?[ref] = nil }
        if state[key]?.isEmpty == true { state[key] = nil }
    }
}
