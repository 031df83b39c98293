@testable import HeraldCore
import Testing

@Suite("Positions, retention and resume decisions")
struct ChangeRetentionTests {
    static let second: Int64 = 1_000_000

    static func change(_ id: Int, at commitTimestamp: Int64 = 0, position: ChangePosition? = nil, table: String = "t") -> Change {
        Change(
            schema: "public",
            table: table,
            type: .insert,
            commitTimestamp: commitTimestamp,
            columns: [Column(name: "id", type: "int4")],
            record: ["id": .int(id)],
            oldRecord: nil,
            position: position
        )
    }

    static func ids(_ decision: ResumeDecision) -> [Int]? {
        guard case .replay(let changes) = decision else { return nil }
        return changes.compactMap { $0.record?["id"]?.intValue }
    }

    @Test func positionsReadBackAndSortAsText() throws {
        let wal = ChangePosition.wal(commitLSN: LSN(0x1_A2B3_C8), index: 3)
        #expect(wal.description == "wal:0000000001A2B3C8:00000003")
        #expect(ChangePosition(wal.description) == wal)
        let process = ChangePosition(stream: .process(epoch: 0x9F86_D081_884C_7D65), major: 42, minor: 0)
        #expect(process.description == "trigger-9F86D081884C7D65:000000000000002A:00000000")
        #expect(ChangePosition(process.description) == process)
        for text in ["", "wal", "wal:1:2", "wal:000000001A2B3C8G:00000000", "trigger-12:0000000000000001:00000000", "x:0000000000000001:00000000"] {
            #expect(ChangePosition(text) == nil, "\(text)")
        }
        let positions = [
            ChangePosition.wal(commitLSN: LSN(0x10), index: 2), .wal(commitLSN: LSN(0x10), index: 10), .wal(commitLSN: LSN(0x1_0000_0000), index: 0),
        ]
        #expect(positions == positions.sorted())
        #expect(positions.map(\.description) == positions.map(\.description).sorted())
    }

    @Test func processStreamsNumberChangesAndReplayWhatFollowsAPosition() throws {
        var retention = ChangeRetention(epoch: 7, window: RetentionWindow())
        let recorded = (1...5).compactMap { retention.append(Self.change($0), now: 0) }
        #expect(recorded.map { $0.position?.major } == [1, 2, 3, 4, 5])
        #expect(recorded.allSatisfy { $0.position?.stream == .process(epoch: 7) })

        #expect(Self.ids(retention.resume(after: recorded[1].position ?? retention.horizon)) == [3, 4, 5])
        #expect(Self.ids(retention.resume(after: recorded[4].position ?? retention.horizon)) == [])
        // Nothing seen yet (the horizon itself): everything.
        #expect(Self.ids(retention.resume(after: retention.horizon)) == [1, 2, 3, 4, 5])
    }

    @Test func foreignUnknownAndUnreadablePositionsMustRefetch() {
        var retention = ChangeRetention(epoch: 7, window: RetentionWindow())
        _ = retention.append(Self.change(1), now: 0)
        guard case .refetch(let other) = retention.resume(after: ChangePosition(stream: .process(epoch: 8), major: 1, minor: 0)) else {
            Issue.record("another epoch was resumed")
            return
        }
        #expect(other.contains("another change stream") && other.hasSuffix("Refetch to catch up."))
        guard case .refetch(let unknown) = retention.resume(after: ChangePosition(stream: .process(epoch: 7), major: 2, minor: 0)) else {
            Issue.record("a position from the future was resumed")
            return
        }
        #expect(unknown.contains("has not seen"))
        #expect(ResumeDecision.unreadable("nope") == .refetch("Cannot resume postgres_changes from 'nope': it is not a change position. Refetch to catch up."))
    }

    @Test func timeEvictionMovesTheHorizonAndOlderPositionsMustRefetch() {
        var retention = ChangeRetention(epoch: 1, window: RetentionWindow(duration: .seconds(300)))
        let first = retention.append(Self.change(1, at: 0), now: 0)
        let second = retention.append(Self.change(2, at: 100 * Self.second), now: 100 * Self.second)
        _ = retention.append(Self.change(3, at: 200 * Self.second), now: 200 * Self.second)
        #expect(retention.count == 3)
        retention.expire(now: 350 * Self.second)
        #expect(retention.count == 2)
        #expect(retention.horizon == first?.position)
        // The client saw the evicted change last: everything after it is still here.
        #expect(Self.ids(retention.resume(after: first?.position ?? retention.horizon)) == [2, 3])
        retention.expire(now: 450 * Self.second)
        guard case .refetch(let message) = retention.resume(after: first?.position ?? retention.horizon) else {
            Issue.record("an evicted position was resumed")
            return
        }
        #expect(message.contains("older than"))
        #expect(Self.ids(retention.resume(after: second?.position ?? retention.horizon)) == [3])
    }

    @Test func theByteLimitEvictsTheOldest() {
        let size = ChangeRetention.estimatedBytes(Self.change(1))
        var retention = ChangeRetention(epoch: 1, window: RetentionWindow(maxBytes: size * 3))
        for id in 1...9 { _ = retention.append(Self.change(id), now: 0) }
        #expect(retention.count == 3)
        #expect(retention.bytes <= size * 3)
        #expect(Self.ids(retention.resume(after: retention.horizon)) == [7, 8, 9])
    }

    @Test func walStreamsKeepTheirPositionsRefuseRepeatsAndStartAtTheSlot() {
        var retention = ChangeRetention(walFrom: LSN(0x100), window: RetentionWindow())
        let inTransaction = [0, 1, 2].map { Self.change($0, position: .wal(commitLSN: LSN(0x100), index: UInt32($0))) }
        for change in inTransaction { #expect(retention.append(change, now: 0) != nil) }
        // A repeat and a change without a position are not recorded.
        #expect(retention.append(inTransaction[1], now: 0) == nil)
        #expect(retention.append(Self.change(9), now: 0) == nil)
        #expect(retention.append(Self.change(3, position: .wal(commitLSN: LSN(0x200), index: 0)), now: 0) != nil)
        #expect(Self.ids(retention.resume(after: .wal(commitLSN: LSN(0x100), index: 1))) == [2, 3])
        // Positions before the slot's confirmed position were confirmed in an earlier run: gone.
        guard case .refetch = retention.resume(after: .wal(commitLSN: LSN(0xF0), index: 0)) else {
            Issue.record("a position before the slot was resumed")
            return
        }
        #expect(Self.ids(retention.resume(after: retention.horizon)) == [0, 1, 2, 3])
    }

    @Test func forgettingRefusesEveryPositionSeenSoFar() {
        var retention = ChangeRetention(epoch: 1, window: RetentionWindow())
        let seen = retention.append(Self.change(1), now: 0)?.position
        retention.forgetAll()
        #expect(retention.count == 0)
        guard case .refetch = retention.resume(after: seen ?? retention.horizon) else {
            Issue.record("a position from before lost changes was resumed")
            return
        }
        let next = retention.append(Self.change(2), now: 0)?.position
        #expect(next.map { $0 > (seen ?? $0) } == true)
        #expect(Self.ids(retention.resume(after: next ?? retention.horizon)) == [])
    }

    @Test func theSlotIsConfirmedOnlyPastTransactionsNoLongerKept() {
        var slot = SlotRetention()
        func commit(_ lsn: UInt64) -> TransactionCommit { TransactionCommit(commitLSN: LSN(lsn), endLSN: LSN(lsn + 8), commitTimestamp: 0) }
        slot.committed(commit(0x100))
        slot.committed(commit(0x200))
        slot.committed(commit(0x300))
        // The oldest kept change belongs to the transaction at 0x200.
        #expect(slot.confirmable(oldestKept: .wal(commitLSN: LSN(0x200), index: 4)) == LSN(0x108))
        #expect(slot.confirmable(oldestKept: .wal(commitLSN: LSN(0x200), index: 4)) == nil)
        #expect(slot.pending == 2)
        // Nothing kept: everything committed may go.
        #expect(slot.confirmable(oldestKept: nil) == LSN(0x308))
        #expect(slot.pending == 0)
    }

    @Test func replicatedChangesArePositionedByCommitAndIndex() throws {
        typealias F = PgOutputFixtures
        var feeder = ChangeAssemblerTests.Feeder()
        let events = try feeder.feed(
            [ChangeAssemblerTests.begin(0x500), try decode(F.typeMood), try decode(F.typePosint), try decode(F.relationKinds)]
                + [try decode(F.insertKinds2), try decode(F.insertKinds3), ChangeAssemblerTests.commit(0x500)]
                + [ChangeAssemblerTests.begin(0x600), try decode(F.insertKinds4), ChangeAssemblerTests.commit(0x600)]
        )
        let positions = events.compactMap { event -> ChangePosition? in if case .change(let change) = event { change.position } else { nil } }
        #expect(positions == [.wal(commitLSN: LSN(0x500), index: 0), .wal(commitLSN: LSN(0x500), index: 1), .wal(commitLSN: LSN(0x600), index: 0)])
    }

    @Test func eventsCarryThePositionAndJoinsTheResumePosition() {
        let change = Self.change(1, position: .wal(commitLSN: LSN(0x10), index: 0))
        let data = ChangeEvent.data(change)
        #expect(data.members.map(\.key) == ["schema", "table", "type", "commit_timestamp", "columns", "record", "errors", "position"])
        #expect(data["position"] == "wal:0000000000000010:00000000")
        #expect(ChangeEvent.data(Self.change(1)).members.map(\.key).contains("position") == false)

        let inConfig = JoinConfig(payload: ["config": ["postgres_changes_resume": "wal:0000000000000010:00000000"]])
        #expect(inConfig.postgresChangesResume == "wal:0000000000000010:00000000")
        // realtime-js and the Python client rebuild `config` but merge top-level keys (updateJoinPayload).
        let topLevel = JoinConfig(payload: ["config": [:], "postgres_changes_resume": "x"])
        #expect(topLevel.postgresChangesResume == "x")
        #expect(JoinConfig(payload: ["config": ["postgres_changes_resume": ""]]).postgresChangesResume == nil)
        #expect(JoinConfig(payload: ["config": ["postgres_changes_resume": .null]]).postgresChangesResume == nil)
    }
}
