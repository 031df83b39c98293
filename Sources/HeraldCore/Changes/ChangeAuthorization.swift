import Synchronization

/// Who a subscriber is, for deciding what it may read: its JWT role and claims. Subscribers with equal claims see
/// the same rows, so a change's visibility is decided once per group, not once per subscriber; and when a table's
/// policies read only some claims, groups that agree on those are checked as one (`keeping(_:)`). A class with its
/// hash computed once: the dispatcher looks groups up for every subscriber of every change.
public final class ClaimGroup: Sendable, Hashable {
    public let role: String
    public let claims: JSONObject
    /// The claims as JSON text, as the database will see them in `request.jwt.claims`.
    public let claimsJSON: String
    private let fingerprint: Int
    /// The last `keeping(_:)`: the dispatcher asks the same of every group batch after batch.
    private let lastKept = Mutex<(keys: [String], group: ClaimGroup)?>(nil)

    public convenience init(_ claims: TokenClaims) {
        self.init(role: claims.role, claims: claims.claims)
    }

    init(role: String, claims: JSONObject) {
        self.role = role
        self.claims = claims
        claimsJSON = JSONValue.object(claims).jsonString
        var hasher = Hasher()
        hasher.combine(role)
        hasher.combine(claimsJSON)
        fingerprint = hasher.finalize()
    }

    /// The group as policies that read only `keys` see it (members in the order of `keys`, so that subscribers
    /// whose tokens agree on those claims compare equal).
    public func keeping(_ keys: [String]) -> ClaimGroup {
        if let last = lastKept.withLock({ $0 }), last.keys == keys { return last.group }
        let kept = ClaimGroup(role: role, claims: JSONObject(keys.compactMap { key in claims[key].map { JSONObject.Member(key: key, value: $0) } }))
        lastKept.withLock { $0 = (keys, kept) }
        return kept
    }

    public static func == (left: ClaimGroup, right: ClaimGroup) -> Bool {
        left === right || (left.fingerprint == right.fingerprint && left.role == right.role && left.claimsJSON == right.claimsJSON)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(fingerprint)
    }
}

/// One table's part of a visibility check (`realtime.visible_rows`, sql/realtime/authorization.sql): the primary
/// keys of the changed rows to check and the groups to check them for.
public struct VisibilityCheck: Sendable, Equatable {
    /// `"schema"."table"`, quoted for `::regclass`.
    public var entity: String
    public var keys: [JSONObject]
    public var groups: [ClaimGroup]
    /// The only claims the groups carry (nil: all of them). The database answers "stale" when the table's
    /// policies now read another claim.
    public var claimKeys: [String]?
    /// The transactions that wrote the rows: the database waits until they are visible before it looks.
    public var transactionIDs: [UInt32]

    public init(
        schema: String, table: String, keys: [JSONObject], groups: [ClaimGroup], claimKeys: [String]? = nil, transactionIDs: [UInt32] = []
    ) {
        entity = Self.entity(schema: schema, table: table)
        self.keys = keys
        self.groups = groups
        self.claimKeys = claimKeys
        self.transactionIDs = transactionIDs
    }

    /// `"schema"."table"`: how checks and answers name a table.
    public static func entity(schema: String, table: String) -> String {
        quoted(schema) + "." + quoted(table)
    }

    static func quoted(_ identifier: String) -> String {
        "\"" + String(identifier.flatMap { $0 == "\"" ? ["\"", "\""] : [$0] }) + "\""
    }

    /// The function's argument: `[{"entity","keys","claim_keys","groups":[{"role","claims"}]}]`.
    public static func requestJSON(_ checks: [VisibilityCheck]) -> String {
        var text = "["
        for (index, check) in checks.enumerated() {
            if index > 0 { text += "," }
            text += #"{"entity":"# + JSONValue.string(check.entity).jsonString
            text += #","keys":"# + JSONValue.array(check.keys.map(JSONValue.object)).jsonString
            if let claimKeys = check.claimKeys { text += #","claim_keys":"# + JSONValue.array(claimKeys.map(JSONValue.string)).jsonString }
            if !check.transactionIDs.isEmpty { text += #","xids":["# + check.transactionIDs.map(String.init).joined(separator: ",") + "]" }
            text += #","groups":["#
            for (groupIndex, group) in check.groups.enumerated() {
                if groupIndex > 0 { text += "," }
                text += #"{"role":"# + JSONValue.string(group.role).jsonString + #","claims":"# + group.claimsJSON + "}"
            }
            text += "]}"
        }
        return text + "]"
    }
}

/// The database's answer for one table: its primary key, whether row level security is on, the claims its policies
/// read, the columns each role may select, and which of the checked keys each group may see.
public struct VisibilityAnswer: Sendable, Equatable {
    public var primaryKey: [String]
    public var rowSecurity: Bool
    /// The claims the table's policies read ([] without RLS); nil when the database cannot tell.
    public var claimKeys: [String]?
    /// The check carried fewer claims than the policies now read: nothing was decided, ask again.
    public var stale: Bool
    public var columnsByRole: [String: Set<String>]
    /// Per group (in the order of the check): the visible key indexes, or nil when all are (no RLS).
    public var visible: [Set<Int>?]

    public init(
        primaryKey: [String], rowSecurity: Bool, claimKeys: [String]? = nil, stale: Bool = false, columnsByRole: [String: Set<String>],
        visible: [Set<Int>?]
    ) {
        self.primaryKey = primaryKey
        self.rowSecurity = rowSecurity
        self.claimKeys = claimKeys
        self.stale = stale
        self.columnsByRole = columnsByRole
        self.visible = visible
    }

    /// Parses the function's result (one answer per check, in order).
    public static func parse(_ text: String) throws -> [VisibilityAnswer] {
        guard case .array(let items) = try JSONValue.parse(Array(text.utf8)) else { throw FrameDecodingError("visibility answer is not an array") }
        return try items.map { item in
            guard case .array(let keyValues)? = item["primary_key"], case .bool(let rowSecurity)? = item["rls"],
                case .object(let columns)? = item["columns"], case .array(let visibleValues)? = item["visible"]
            else { throw FrameDecodingError("malformed visibility answer") }
            var columnsByRole: [String: Set<String>] = [:]
            for member in columns.members {
                columnsByRole[member.key] = Set(member.value.arrayValue?.compactMap(\.stringValue) ?? [])
            }
            let visible: [Set<Int>?] = visibleValues.map { value in
                guard case .array(let indexes) = value else { return nil }
                return Set(indexes.compactMap { $0.doubleValue.map { Int($0) } })
            }
            return VisibilityAnswer(
                primaryKey: keyValues.compactMap(\.stringValue),
                rowSecurity: rowSecurity,
                claimKeys: item["claim_keys"]?.arrayValue?.compactMap(\.stringValue),
                stale: item["stale"] == .bool(true),
                columnsByRole: columnsByRole,
                visible: visible
            )
        }
    }
}

/// What one change looks like to its subscribers (reference sections 3.3, 3.5, 3.6), given the database's answer
/// for its table: whether a group sees it at all, and the `data` object each role gets.
public struct AuthorizedChange: Sendable {
    public let change: Change
    public let answer: VisibilityAnswer
    /// The change's index among its table's checked keys (nil when not checked: DELETE, no primary key).
    public let keyIndex: Int?

    public init(change: Change, answer: VisibilityAnswer, keyIndex: Int?) {
        self.change = change
        self.answer = answer
        self.keyIndex = keyIndex
    }

    /// Whether group `groupIndex` (its index in the table's check) gets this change. Error variants (no primary key,
    /// key not selectable) are sent, as upstream does; deleted rows cannot be checked (they are gone), so every
    /// matching subscriber gets them.
    public func isVisible(toGroup groupIndex: Int, role: String) -> Bool {
        if error(role: role) != nil || change.type == .delete || !answer.rowSecurity { return true }
        guard let keyIndex, groupIndex < answer.visible.count else { return false }
        guard let visible = answer.visible[groupIndex] else { return true }
        return visible.contains(keyIndex)
    }

    /// The `data` object for subscribers of `role`: only the columns the role may select; a DELETE's old record on a
    /// table with RLS keeps only the primary key.
    public func data(role: String) -> JSONObject {
        if let error = error(role: role) { return ChangeEvent.errorData(change, error: error) }
        let columns = answer.columnsByRole[role] ?? []
        let keyOnlyOldRecord = change.type == .delete && answer.rowSecurity
        // The common case, a role that may select every column: nothing to take out.
        if !keyOnlyOldRecord && change.columns.allSatisfy({ columns.contains($0.name) }) { return ChangeEvent.data(change) }
        let oldColumns = keyOnlyOldRecord ? Set(answer.primaryKey) : columns
        var visible = change
        visible.columns = change.columns.filter { columns.contains($0.name) }
        visible.record = change.record.map { JSONObject($0.members.filter { columns.contains($0.key) }) }
        visible.oldRecord = change.oldRecord.map { JSONObject($0.members.filter { oldColumns.contains($0.key) }) }
        return ChangeEvent.data(visible)
    }

    private func error(role: String) -> String? {
        if answer.primaryKey.isEmpty && change.type != .delete { return "Error 400: Bad Request, no primary key" }
        let columns = answer.columnsByRole[role] ?? []
        if !answer.primaryKey.allSatisfy(columns.contains) { return "Error 401: Unauthorized" }
        return nil
    }
}
