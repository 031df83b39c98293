import Foundation
import HeraldCore
import HeraldPostgres
import Synchronization
import Testing

/// Collects replication events so that a test can await them one by one. Changes can be counted instead of
/// kept (`keepChanges: false`), for transactions too big to hold.
final class ReplicationRecorder: Sendable {
    struct Timeout: Error, CustomStringConvertible {
        var description: String
    }

    private struct State {
        var events: [ReplicationEvent] = []
        var changeCount = 0
    }

    private let state = Mutex(State())
    private let keepChanges: Bool

    init(keepChanges: Bool = true) {
        self.keepChanges = keepChanges
    }

    @Sendable func record(_ event: ReplicationEvent) {
        state.withLock { state in
            if case .change = event {
                state.changeCount += 1
                if !keepChanges { return }
            }
            state.events.append(event)
        }
    }

    var changeCount: Int { state.withLock { $0.changeCount } }

    /// The oldest event not yet taken, waiting up to `timeout` for it.
    func next(timeout: Duration = .seconds(20)) async throws -> ReplicationEvent {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let event = state.withLock({ $0.events.isEmpty ? nil : $0.events.removeFirst() }) { return event }
            try await Task.sleep(for: .milliseconds(5))
        }
        throw Timeout(description: "no replication event within \(timeout)")
    }

    /// The changes of the next transaction (`.begin`, changes, `.commit`), and its commit.
    func nextTransaction(timeout: Duration = .seconds(20)) async throws -> (changes: [Change], commit: TransactionCommit) {
        guard case .begin = try await next(timeout: timeout) else { throw Timeout(description: "expected a transaction to begin") }
        var changes: [Change] = []
        while true {
            switch try await next(timeout: timeout) {
            case .change(let change): changes.append(change)
            case .commit(let commit): return (changes, commit)
            case let other: throw Timeout(description: "expected a change or a commit, got \(other)")
            }
        }
    }

    /// The changes of the next transaction.
    func nextChanges(timeout: Duration = .seconds(20)) async throws -> [Change] {
        try await nextTransaction(timeout: timeout).changes
    }

    var pending: [ReplicationEvent] { state.withLock { $0.events } }
}

/// A slot name no other test uses: slots belong to the whole cluster.
func uniqueSlotName() -> String {
    "test_" + UUID().uuidString.prefix(8).lowercased()
}

/// Runs a replication stream on `url` for the duration of `body`, after its first `.streaming` event, then
/// drops its slot. Commits are acknowledged as they are recorded unless `acknowledge` is `false`.
func withReplication<T>(
    url: String,
    slot: String = uniqueSlotName(),
    publication: String = "herald",
    backoff: ListenerStateMachine.Backoff = .init(initial: .milliseconds(50), maximum: .milliseconds(400)),
    acknowledge: Bool = true,
    recorder: ReplicationRecorder = ReplicationRecorder(),
    _ body: (ReplicationRecorder, ReplicationStream) async throws -> T
) async throws -> T {
    let stream = try ReplicationStream(
        databaseURL: url,
        configuration: .init(slot: slot, publication: publication, backoff: backoff, feedback: .init(interval: .seconds(10), minimumInterval: .milliseconds(50)))
    )
    let running = Task {
        await stream.run { event in
            if acknowledge, case .commit(let commit) = event { stream.acknowledge(commit.endLSN) }
            recorder.record(event)
        }
    }
    defer { stream.stop() }
    let result: T
    do {
        #expect(try await recorder.next() == .streaming(reconnected: false, slotRecreated: false))
        result = try await body(recorder, stream)
    } catch {
        stream.stop()
        await running.value
        try? await dropSlot(slot, url: url)
        throw error
    }
    stream.stop()
    await running.value
    try await dropSlot(slot, url: url)
    return result
}

/// Drops a slot once its walsender has gone (which takes a moment after the stream stops).
func dropSlot(_ slot: String, url: String) async throws {
    let connection = TestSQL(url: url)
    for _ in 0..<100 {
        let rows = try await connection.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
            params: [slot]
        )
        let remaining = try await connection.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", params: [slot])
        if rows.count == 1 || remaining.isEmpty { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    Issue.record("replication slot \(slot) stayed active")
}

/// Statements from a test, run on a connection thread of their own rather than on the cooperative pool: some
/// take seconds (a 100,000-row insert), which would starve the other tests running in parallel.
final class TestSQL: Sendable {
    private let client: PostgresClient

    init(url: String) {
        client = PostgresClient(databaseURL: url, applicationName: "herald-tests")
    }

    deinit {
        client.close()
    }

    @discardableResult
    func execute(_ sql: String, params: [String?] = []) async throws -> PGRows {
        try await client.query(sql, params)
    }

    func executeScript(_ sql: String) async throws {
        try await client.withConnection { try $0.executeScript(sql) }
    }

    func synchronizePublication(_ name: String, tables: [TableName]) async throws -> PublicationPlan {
        try await client.withConnection { try $0.synchronizePublication(name, tables: tables) }
    }
}
