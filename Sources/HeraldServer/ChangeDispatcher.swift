import Foundation
import HeraldCore
import HeraldPostgres
import Logging
import NIOCore
import ServiceLifecycle

/// Committed changes (and gap reports) on their way from the change source to the sockets, in commit order. The
/// source's thread hands them over without waiting for the database, unless the queue is full: then it waits,
/// which slows the source down instead of growing memory.
final class ChangeQueue: Sendable {
    enum Item: Sendable {
        case change(Change)
        case gap(String)
    }

    private struct State {
        var items: [Item] = []
        var closed = false
    }

    private let state = NSCondition()
    private nonisolated(unsafe) var storage = State()
    private let capacity: Int
    private let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    /// From any thread. Blocks while the queue is full (until the dispatcher takes a batch or the queue closes).
    func submit(_ item: Item) {
        state.lock()
        while storage.items.count >= capacity && !storage.closed { state.wait() }
        // The dispatcher only waits after finding the queue empty: wake it for the first item, not for each one
        // (under load it is busy with a batch, and a wake-up per change is a lock and a yield on the source's thread).
        let wasEmpty = storage.items.isEmpty
        if !storage.closed { storage.items.append(item) }
        state.unlock()
        if wasEmpty { wake.yield() }
    }

    /// Waits until items are queued and takes up to `limit` of them; nil once closed and empty.
    func take(limit: Int) async -> [Item]? {
        var iterator = wakeups.makeAsyncIterator()
        while true {
            switch takeQueued(limit: limit) {
            case .items(let batch): return batch
            case .closed: return nil
            case .empty: guard await iterator.next() != nil else { return nil }
            }
        }
    }

    private enum Taken {
        case items([Item])
        case empty
        case closed
    }

    private func takeQueued(limit: Int) -> Taken {
        state.lock()
        defer { state.unlock() }
        if storage.items.isEmpty { return storage.closed ? .closed : .empty }
        let batch: [Item]
        if storage.items.count <= limit {
            batch = storage.items
            storage.items = []
        } else {
            batch = Array(storage.items.prefix(limit))
            storage.items.removeFirst(limit)
        }
        state.broadcast()
        return .items(batch)
    }

    /// Stops accepting items and releases waiting submitters.
    func close() {
        state.lock()
        storage.closed = true
        state.broadcast()
        state.unlock()
        wake.finish()
    }
}

/// Delivers queued changes to their subscribers, each subscriber getting only the rows and columns its JWT role and
/// claims may read (reference section 3.6). Subscribers are grouped by claims, and what every group may see of a
/// whole batch of changes is decided by one database round trip (`realtime.visible_rows`).
struct ChangeDispatcher: Service, CustomStringConvertible {
    var description: String { "ChangeDispatcher" }

    let hub: Hub
    let authorizer: ChangeAuthorizer
    let logger: Logger
    /// Most changes decided by one round trip.
    var batchLimit = 1_000

    static let authorizationGapMessage =
        "Realtime could not check what this channel may read, so some changes were not delivered. Refetch to catch up."

    func run() async throws {
        await withGracefulShutdownHandler {
            while let batch = await hub.changes.take(limit: batchLimit) {
                await dispatch(batch)
            }
        } onGracefulShutdown: {
            hub.changes.close()
        }
    }

    /// Sends a resuming channel the kept changes after its position that it matches and may see, up to where its live
    /// changes begin (`point.through`), then lets its held live changes follow; or the `system` error telling it to
    /// refetch when Herald cannot tell what it missed.
    func replay(_ point: Hub.ResumePoint) async {
        let text = point.join.config.postgresChangesResume ?? ""
        var decision = ResumeDecision.unreadable(text)
        hub.changeLog.pausingDispatch { retention in
            if let position = ChangePosition(text) { decision = retention.resume(after: position) }
        }
        var frames: [ByteBuffer] = []
        switch decision {
        case .refetch(let message):
            frames = [systemError(message, for: point)]
        case .replay(let changes):
            var index = PostgresBindingIndex()
            index.insert(point.join.subscriber, bindings: point.bindings)
            let missed: [(change: Change, ids: [Int])] = changes.compactMap { change in
                guard let position = change.position, let through = point.through, position <= through,
                    let ids = index.match(change).first?.ids
                else { return nil }
                return (change, ids)
            }
            guard !missed.isEmpty else { break }
            var plan = AuthorizationPlan()
            for (index, item) in missed.enumerated() {
                plan.add(item.change, at: index, groups: [point.group], primaryKey: authorizer.primaryKey(of: item.change))
            }
            guard let answers = await authorizer.answers(plan.checks) else {
                frames = [systemError(Self.authorizationGapMessage, for: point)]
                break
            }
            for (index, item) in missed.enumerated() {
                guard let placement = plan.placements[index] else { continue }
                let authorized = AuthorizedChange(change: item.change, answer: answers[placement.check], keyIndex: placement.key)
                guard authorized.isVisible(toGroup: 0, role: point.group.role) else { continue }
                let target = Hub.ChangeTarget(
                    subscriber: point.join.subscriber, connection: point.connection, topic: point.join.topic, ids: item.ids, group: point.group
                )
                var changeFrames = ChangeFrames(authorized)
                frames.append(changeFrames.frame(for: target))
            }
        }
        hub.release(point.join.subscriber, replay: frames)
    }

    private func systemError(_ message: String, for point: Hub.ResumePoint) -> ByteBuffer {
        WebSocketFraming.text(SocketSession.system(point.join, extension: "postgres_changes", status: "error", message: message).encode(point.connection.version))
    }

    private func dispatch(_ batch: [ChangeQueue.Item]) async {
        var plan = AuthorizationPlan()
        var steps: [(item: ChangeQueue.Item, targets: [Hub.ChangeTarget])] = []
        for item in batch {
            guard case .change(let change) = item else {
                steps.append((item, []))
                continue
            }
            let targets = hub.targets(for: change)
            if !targets.isEmpty { plan.add(change, at: steps.count, groups: targets.map(\.group), primaryKey: authorizer.primaryKey(of: change)) }
            steps.append((item, targets))
        }
        plan.orderGroupsByRole()
        var answers: [VisibilityAnswer]?
        if !plan.checks.isEmpty {
            answers = await authorizer.answers(plan.checks)
            if answers == nil {
                logger.error("postgres_changes: authorization check failed; changes of this batch were not delivered")
            }
        }
        var reported: Set<SubscriberID> = []
        for (index, step) in steps.enumerated() {
            switch step.item {
            case .gap(let message):
                hub.sendGap(message)
            case .change(let change):
                guard !step.targets.isEmpty else { continue }
                guard let answers, let placement = plan.placements[index] else {
                    // Fail closed: nobody gets a row whose visibility is unknown; they are told to refetch.
                    let unreported = step.targets.filter { reported.insert($0.subscriber).inserted }
                    hub.sendGap(Self.authorizationGapMessage, to: unreported)
                    continue
                }
                let answer = answers[placement.check]
                authorizer.learn(answer, for: change)
                let authorized = AuthorizedChange(change: change, answer: answer, keyIndex: placement.key)
                let groupIndexes = plan.groupIndexes[placement.check]
                let visible = step.targets.filter { target in
                    guard let groupIndex = groupIndexes[target.group] else { return false }
                    return authorized.isVisible(toGroup: groupIndex, role: target.group.role)
                }
                hub.deliver(authorized, to: visible)
            }
        }
    }
}

/// The checks of one batch: one per table, with its distinct claim groups (sorted by role, so the database switches
/// roles as rarely as possible) and the primary keys of the rows to check.
struct AuthorizationPlan {
    struct Placement {
        var check: Int
        var key: Int?
    }

    private(set) var checks: [VisibilityCheck] = []
    private(set) var groupIndexes: [[ClaimGroup: Int]] = []
    /// By the change's index in the batch.
    private(set) var placements: [Int: Placement] = [:]
    private var checkByTable: [String: Int] = [:]

    /// `index` is the change's place in the batch; `primaryKey` the table's key as last seen (nil: not known yet,
    /// the row is then sent whole and the database compares its key columns).
    mutating func add(_ change: Change, at index: Int, groups: [ClaimGroup], primaryKey: [String]?) {
        let tableKey = change.schema + "\u{0}" + change.table
        let check: Int
        if let existing = checkByTable[tableKey] {
            check = existing
        } else {
            check = checks.count
            checkByTable[tableKey] = check
            checks.append(VisibilityCheck(schema: change.schema, table: change.table, keys: [], groups: []))
            groupIndexes.append([:])
        }
        for group in groups where groupIndexes[check][group] == nil {
            groupIndexes[check][group] = checks[check].groups.count
            checks[check].groups.append(group)
        }
        var key: Int?
        if change.type != .delete, let record = change.record {
            let keyColumns = primaryKey.map(Set.init)
            key = checks[check].keys.count
            checks[check].keys.append(JSONObject(record.members.filter { keyColumns?.contains($0.key) ?? true }))
        }
        placements[index] = Placement(check: check, key: key)
    }

    /// The database re-plans its probe whenever the role changes: ask role by role.
    mutating func orderGroupsByRole() {
        for check in checks.indices {
            checks[check].groups.sort { ($0.role, $0.claimsJSON) < ($1.role, $1.claimsJSON) }
            groupIndexes[check] = Dictionary(uniqueKeysWithValues: checks[check].groups.enumerated().map { ($1, $0) })
        }
    }
}
