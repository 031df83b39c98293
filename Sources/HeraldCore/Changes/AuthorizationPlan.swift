/// What Herald remembers of a table between batches, from the database's last answer: its primary key (only key
/// values travel to the database) and the claims its policies read (subscribers that agree on them are one group).
public struct KnownTable: Sendable, Equatable {
    public var primaryKey: [String]
    public var claimKeys: [String]?

    public init(_ answer: VisibilityAnswer) {
        primaryKey = answer.primaryKey
        claimKeys = answer.claimKeys
    }
}

/// One change of a batch to decide: its index in the batch and the claim groups of its subscribers.
public struct AuthorizationRequest: Sendable {
    public var index: Int
    public var change: Change
    public var groups: [ClaimGroup]

    public init(index: Int, change: Change, groups: [ClaimGroup]) {
        self.index = index
        self.change = change
        self.groups = groups
    }
}

/// The checks of one batch: one per table, with the primary keys of its rows to check and its distinct claim groups,
/// merged down to the claims the table's policies read when that is known, and sorted by role (the database
/// switches roles as rarely as possible).
public struct AuthorizationPlan: Sendable {
    struct Placement {
        var check: Int
        var key: Int?
    }

    public private(set) var checks: [VisibilityCheck] = []
    /// By the change's index in the batch.
    private var placements: [Int: Placement] = [:]
    private var checkByEntity: [String: Int] = [:]
    /// Per check: each subscriber's group → the group it is checked as.
    private var mergedGroups: [[ClaimGroup: ClaimGroup]] = []
    /// Per check: each subscriber's group → its index among the check's groups (after `finish()`).
    private var groupIndexes: [[ClaimGroup: Int]] = []
    /// Per check: the transactions that wrote its rows.
    private var transactionIDs: [Set<UInt32>] = []

    public init(_ requests: [AuthorizationRequest], known: (_ entity: String) -> KnownTable?) {
        for request in requests { add(request, known: known) }
        finish()
    }

    private mutating func add(_ request: AuthorizationRequest, known: (String) -> KnownTable?) {
        let change = request.change
        let entity = VisibilityCheck.entity(schema: change.schema, table: change.table)
        let table = known(entity)
        let check: Int
        if let existing = checkByEntity[entity] {
            check = existing
        } else {
            check = checks.count
            checkByEntity[entity] = check
            checks.append(VisibilityCheck(schema: change.schema, table: change.table, keys: [], groups: [], claimKeys: table?.claimKeys))
            mergedGroups.append([:])
            transactionIDs.append([])
        }
        for group in request.groups where mergedGroups[check][group] == nil {
            mergedGroups[check][group] = checks[check].claimKeys.map(group.keeping) ?? group
        }
        if let transactionID = change.transactionID { transactionIDs[check].insert(transactionID) }
        var key: Int?
        if change.type != .delete, let record = change.record {
            // Unknown key (first change of the table): the row goes whole and the database compares its key columns.
            key = checks[check].keys.count
            checks[check].keys.append(JSONObject(record.members.filter { table?.primaryKey.contains($0.key) ?? true }))
        }
        placements[request.index] = Placement(check: check, key: key)
    }

    private mutating func finish() {
        for check in checks.indices {
            let groups = Set(mergedGroups[check].values).sorted { ($0.role, $0.claimsJSON) < ($1.role, $1.claimsJSON) }
            checks[check].groups = groups
            checks[check].transactionIDs = transactionIDs[check].sorted()
            let indexes = Dictionary(uniqueKeysWithValues: groups.enumerated().map { ($1, $0) })
            groupIndexes.append(mergedGroups[check].compactMapValues { indexes[$0] })
        }
    }

    /// The decision for the batch, given the database's answers to `checks` (in order).
    public func decided(by answers: [VisibilityAnswer]) -> AuthorizedBatch {
        AuthorizedBatch(plan: self, answers: answers)
    }

    fileprivate func placement(of index: Int) -> Placement? { placements[index] }
    fileprivate func groupIndexes(ofCheck check: Int) -> [ClaimGroup: Int] { groupIndexes[check] }
}

/// A batch's changes as the database decided them: what each change looks like and who may see it.
public struct AuthorizedBatch: Sendable {
    let plan: AuthorizationPlan
    let answers: [VisibilityAnswer]

    /// The change at `index` of the batch as its table's answer has it; nil when it was not part of the plan.
    public func decision(for change: Change, at index: Int) -> ChangeDecision? {
        guard let placement = plan.placement(of: index), placement.check < answers.count else { return nil }
        let authorized = AuthorizedChange(change: change, answer: answers[placement.check], keyIndex: placement.key)
        let groups = plan.checks[placement.check].groups
        return ChangeDecision(
            change: authorized,
            groupIndexes: plan.groupIndexes(ofCheck: placement.check),
            admitted: groups.indices.map { authorized.isVisible(toGroup: $0, role: groups[$0].role) }
        )
    }
}

/// One change of a decided batch: its `data` per role and whether a subscriber's claim group gets it (decided once
/// per checked group, looked up per subscriber).
public struct ChangeDecision: Sendable {
    public let change: AuthorizedChange
    let groupIndexes: [ClaimGroup: Int]
    let admitted: [Bool]

    /// Whether subscribers of `group` get the change (not when the batch was not planned for them).
    public func admits(_ group: ClaimGroup) -> Bool {
        guard let index = groupIndexes[group], index < admitted.count else { return false }
        return admitted[index]
    }
}
