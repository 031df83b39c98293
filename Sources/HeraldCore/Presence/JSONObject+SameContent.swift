extension JSONObject {
    /// Equality that ignores member order, as Realtime's map comparison does when it decides that a
    /// re-track changed nothing. Linear in the size of both values (no per-key linear lookups, since
    /// a tracked payload may be large).
    func hasSameContent(as other: JSONObject) -> Bool {
        guard count == other.count else { return false }
        if zip(members, other.members).allSatisfy({ $0.key == $1.key }) {
            return zip(members, other.members).allSatisfy { $0.value.hasSameContent(as: $1.value) }
        }
        let otherValues = Dictionary(other.members.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
        guard otherValues.count == count else { return false }
        return members.allSatisfy { member in
            guard let value = otherValues[member.key] else { return false }
            return member.value.hasSameContent(as: value)
        }
    }
}

extension JSONValue {
    func hasSameContent(as other: JSONValue) -> Bool {
        switch (self, other) {
        case (.object(let a), .object(let b)): a.hasSameContent(as: b)
        case (.array(let a), .array(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.hasSameContent(as: $1) }
        default: self == other
        }
    }
}
