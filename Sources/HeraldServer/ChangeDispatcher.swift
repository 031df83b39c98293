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

    var isEmpty: Bool {
        state.lock()
        defer { state.unlock() }
        return storage.items.isEmpty
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
    /// Most writes handed to the event loops at once.
    var fanOutLimit = 20_000

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
            let requests = missed.enumerated().map { AuthorizationRequest(index: $0, change: $1.change, groups: [point.group]) }
            guard let decided = await authorizer.decide(requests) else {
                frames = [systemError(Self.authorizationGapMessage, for: point)]
                break
            }
            for (index, item) in missed.enumerated() {
                guard let decision = decided.decision(for: item.change, at: index), decision.admits(point.group) else { continue }
                let target = Hub.ChangeTarget(
                    subscriber: point.join.subscriber, connection: point.connection, topic: point.join.topic, ids: item.ids, group: point.group
                )
                var changeFrames = ChangeFrames(decision.change)
                frames.append(changeFrames.frame(for: target))
            }
        }
        hub.release(point.join.subscriber, replay: frames)
    }

    private func systemError(_ message: String, for point: Hub.ResumePoint) -> ByteBuffer {
        WebSocketFraming.text(SocketSession.system(point.join, extension: "postgres_changes", status: "error", message: message).encode(point.connection.version))
    }

    private func dispatch(_ batch: [ChangeQueue.Item]) async {
        var requests: [AuthorizationRequest] = []
        var steps: [(item: ChangeQueue.Item, matched: Hub.ChangeTargets?)] = []
        for item in batch {
            guard case .change(let change) = item else {
                steps.append((item, nil))
                continue
            }
            let matched = hub.targets(for: change)
            if !matched.targets.isEmpty { requests.append(AuthorizationRequest(index: steps.count, change: change, groups: matched.groups)) }
            steps.append((item, matched))
        }
        var decided: AuthorizedBatch?
        if !requests.isEmpty {
            decided = await authorizer.decide(requests)
            if decided == nil {
                logger.error("postgres_changes: authorization check failed; changes of this batch were not delivered")
            }
        }
        // The batch is one fan-out (a socket that gets several of its changes gets them in one write), handed to the
        // event loops every `fanOutLimit` writes so that the first changes need not wait for the last.
        var fanOut = FanOut()
        var reported: Set<SubscriberID> = []
        for (index, step) in steps.enumerated() {
            switch step.item {
            case .gap(let message):
                fanOut.submit()  // (what came before the gap goes first)
                hub.sendGap(message)
            case .change(let change):
                guard let matched = step.matched, !matched.targets.isEmpty else { continue }
                guard let decided, let decision = decided.decision(for: change, at: index) else {
                    // Fail closed: nobody gets a row whose visibility is unknown; they are told to refetch.
                    let unreported = matched.targets.filter { reported.insert($0.subscriber).inserted }
                    hub.sendGap(Self.authorizationGapMessage, to: unreported)
                    continue
                }
                hub.deliver(decision.change, to: matched.admitted(matched.groups.map(decision.admits)), in: &fanOut)
                if fanOut.count >= fanOutLimit { fanOut.submit() }
            }
        }
        fanOut.submit()
    }
}
