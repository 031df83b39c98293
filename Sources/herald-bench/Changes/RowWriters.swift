import Foundation
import HeraldPostgres
import Synchronization

/// Writers inserting rows into the benchmark table over libpq, one thread and one connection each, every row its
/// own (autocommit) transaction carrying the writer's CLOCK_MONOTONIC time in `bt`: the receivers' latency is
/// commit-to-client (plus the INSERT's own round trip, tens of µs).
enum RowWriters {
    struct Load: Codable, Equatable {
        var connections: Int
        /// Rows per second over all connections (open loop, paced); nil: as fast as they go (closed loop).
        var rowsPerSecond: Double?
        var seconds: Double
    }

    struct Outcome: Codable {
        var rows = 0
        var errors = 0
        var seconds: Double = 0
        /// Rows due by the end but not written (the writers could not keep up).
        var shortfall = 0
        var firstError: String?
    }

    /// The row written `index`-th by `connection`: spreads keys and teams evenly over every connection's rows.
    static func key(connection: Int, index: Int, connections: Int, keyGroups: Int) -> Int {
        (index * connections + connection) % max(1, keyGroups)
    }

    /// Runs `load` from `start` (monotonic ns) on `table` and returns what was written.
    static func run(_ load: Load, databaseURL: String, table: String, keyGroups: Int, teams: Int, start: UInt64) async -> Outcome {
        let connections = max(1, load.connections)
        let total = Mutex(Outcome())
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let left = Mutex(connections)
            for connection in 0..<connections {
                Thread {
                    let outcome = write(connection: connection, of: connections, load: load, databaseURL: databaseURL, table: table, keyGroups: keyGroups, teams: teams, start: start)
                    total.withLock {
                        $0.rows += outcome.rows
                        $0.errors += outcome.errors
                        $0.shortfall += outcome.shortfall
                        $0.seconds = max($0.seconds, outcome.seconds)
                        if $0.firstError == nil { $0.firstError = outcome.firstError }
                    }
                    if left.withLock({ $0 -= 1; return $0 }) == 0 { continuation.resume() }
                }.start()
            }
        }
        return total.withLock { $0 }
    }

    private static func write(
        connection index: Int, of connections: Int, load: Load, databaseURL: String, table: String, keyGroups: Int, teams: Int, start: UInt64
    ) -> Outcome {
        var outcome = Outcome()
        let connection: PGConnection
        do {
            connection = try PGConnection(url: databaseURL, applicationName: "herald-bench-writer")
            // The throwaway cluster runs with synchronous_commit off: WAL would then reach logical decoding only on
            // the WAL writer's 200 ms rounds. On (fsync stays off): each commit flushes its WAL, as in production.
            _ = try connection.execute("SET synchronous_commit = on")
        } catch {
            outcome.errors = 1
            outcome.firstError = error.description
            return outcome
        }
        let end = start + UInt64(load.seconds * 1e9)
        var pacer = load.rowsPerSecond.map { Pacer(start: start, rate: $0 / Double(connections), maxBurst: 1) }
        let sql = "INSERT INTO \(table) (k, team, bt) VALUES ($1, $2, $3)"
        while Monotonic.nanoseconds() < start { usleep(100) }
        var written = 0
        while true {
            let now = Monotonic.nanoseconds()
            guard now < end else { break }
            if var paced = pacer {
                guard paced.due(at: now) > 0 else {
                    pacer = paced
                    // Until the next row is due (at most 1 ms: rounding of the per-connection rate).
                    usleep(UInt32(min(1_000, max(20, 1e6 / max(1, paced.rate) / 2))))
                    continue
                }
                pacer = paced
            }
            let key = key(connection: index, index: written, connections: connections, keyGroups: keyGroups)
            do {
                _ = try connection.execute(sql, params: [String(key), "t\(key % max(1, teams))", String(Monotonic.nanoseconds())])
                outcome.rows += 1
            } catch {
                outcome.errors += 1
                if outcome.firstError == nil { outcome.firstError = error.description }
            }
            written += 1
        }
        outcome.seconds = Double(Monotonic.nanoseconds() - start) / 1e9
        outcome.shortfall = pacer?.shortfall(at: end) ?? 0
        return outcome
    }
}
