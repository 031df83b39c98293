import Foundation
import HeraldPostgres

/// The throwaway PostgreSQL of the change scenarios (`s4`, `rls`): migrated with Herald's SQL, with the
/// benchmark table `public.bench_rows (id, k, team, bt, pad)`, function call counting on
/// (`track_functions = all`), all in one temporary folder removed by `stop()`.
final class ChangeDatabase: Sendable {
    let url: String
    let directory: URL
    private let cluster: LocalPostgresCluster

    static let table = "bench_rows"

    private init(url: String, directory: URL, cluster: LocalPostgresCluster) {
        self.url = url
        self.directory = directory
        self.cluster = cluster
    }

    /// Starts the cluster; with `cpu`, pins it and the writers to that core (see `pin`).
    static func start(herald: String, cpu: Int?) async throws -> ChangeDatabase {
        guard FileManager.default.isExecutableFile(atPath: herald) else {
            throw HarnessFailure("no herald executable at \(herald): build it first (swift build -c release --product herald) or pass --herald")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("herald-bench-changes-\(getpid())-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let cluster = LocalPostgresCluster(
            directory: directory.appendingPathComponent("postgres"),
            port: try LocalPostgresCluster.freePort(),
            options: .init(durable: false)
        )
        let database = ChangeDatabase(url: cluster.databaseURL(), directory: directory, cluster: cluster)
        do {
            try cluster.start()
            let noMigrations = directory.appendingPathComponent("no-migrations").path
            _ = try await Subprocess.run(herald, ["migrate", "--database-url", database.url, "--migrations", noMigrations])
            // ALTER SYSTEM cannot share a (multi-statement, so implicit) transaction.
            try await database.execute("ALTER SYSTEM SET track_functions = 'all'")
            try await database.execute("ALTER SYSTEM SET max_connections = 200")
            try await database.execute(
                """
                CREATE TABLE public.\(table) (id bigserial PRIMARY KEY, k int NOT NULL, team text NOT NULL, bt bigint NOT NULL, pad text NOT NULL DEFAULT '');
                """
            )
            // max_connections needs a restart (32 writers + Herald + the peers).
            try cluster.stop()
            try cluster.start()
            if let cpu { try await database.pin(to: cpu) }
        } catch {
            database.stop()
            throw error
        }
        return database
    }

    /// Pins the postmaster and its processes (backends forked later inherit its core) and this process, whose
    /// threads are the writers, to `cpu`: off the core of the server under test, which then measures what that
    /// server can do rather than its share of a core contended by the writers and the walsender.
    private func pin(to cpu: Int) async throws {
        let pidFile = directory.appendingPathComponent("postgres/data/postmaster.pid")
        guard let postmaster = try String(contentsOf: pidFile, encoding: .utf8).split(separator: "\n").first.map(String.init) else {
            throw HarnessFailure("no postmaster pid in \(pidFile.path)")
        }
        let children = try await Subprocess.run("/usr/bin/pgrep", ["-P", postmaster]).split(separator: "\n").map(String.init)
        for pid in [postmaster] + children + [String(getpid())] {
            _ = try await Subprocess.run("/usr/bin/taskset", ["-a", "-p", "-c", String(cpu), pid])
        }
    }

    /// Runs a script (several statements) on a connection of its own.
    func execute(_ script: String) async throws {
        let url = self.url
        try await offloadedWork { try PGConnection(url: url, applicationName: "herald-bench").executeScript(script) }
    }

    /// The first column of the first row of `sql`.
    func value(_ sql: String) async throws -> String? {
        let url = self.url
        return try await offloadedWork { try PGConnection(url: url, applicationName: "herald-bench").execute(sql).values.first?.first ?? nil }
    }

    /// Calls of `realtime.visible_rows` so far and the milliseconds spent in them (`pg_stat_user_functions`;
    /// backends flush their statistics at most once a second, and when idle).
    func visibleRowsCalls() async throws -> (calls: Int, milliseconds: Double) {
        let sql = "SELECT coalesce(sum(calls), 0) || ' ' || coalesce(sum(total_time), 0) FROM pg_stat_user_functions WHERE schemaname = 'realtime' AND funcname = 'visible_rows'"
        let parts = (try await value(sql) ?? "").split(separator: " ")
        return (parts.first.flatMap { Int($0) } ?? 0, parts.last.flatMap { Double($0) } ?? 0)
    }

    func stop() {
        try? cluster.stop(immediately: true)
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Blocking libpq work off the cooperative pool, on a thread of its own.
func offloadedWork<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
