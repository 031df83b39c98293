import Foundation
import HeraldPostgres
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One throwaway PostgreSQL cluster per test process, and fresh databases on it.
///
/// The cluster starts on first use (in a temporary directory, on a free port, without durability) and is
/// stopped and deleted when the process exits. Every test gets its own database, so tests run in parallel.
public final class TestPostgres: Sendable {
    /// The process-wide instance.
    public static let shared = TestPostgres()

    private struct Running: Sendable {
        var cluster: LocalPostgresCluster
        var admin: PostgresClient
    }

    /// Started once; a failure is remembered and reported to every later caller.
    private let startup = Mutex<Task<Running, any Error>?>(nil)
    /// What the exit handler stops.
    private let clusterToStop = Mutex<LocalPostgresCluster?>(nil)
    private let migratedTemplate = Mutex<Task<String, any Error>?>(nil)
    private let databaseCounter = Atomic(0)

    private init() {}

    /// The running cluster, started on first call (on a thread of its own: initdb takes seconds).
    public func cluster() async throws -> LocalPostgresCluster {
        try await running().cluster
    }

    /// Creates an empty database with a unique name and returns its URL.
    public func makeDatabase() async throws -> String {
        try await createDatabase(template: nil)
    }

    /// Creates a database with Herald's SQL and this repository's `migrations/` applied; returns its URL.
    /// The migrations run once per process, into a template that later calls copy.
    public func makeMigratedDatabase() async throws -> String {
        let template = migratedTemplate.withLock { task in
            if let task { return task }
            let created = Task { try await self.createMigratedTemplate() }
            task = created
            return created
        }
        return try await createDatabase(template: try await template.value)
    }

    /// This repository's application migrations (`migrations/`), applied after Herald's own SQL.
    public static var repositoryMigrations: URL {
        // This file is Sources/HeraldTestSupport/TestPostgres.swift.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("migrations")
    }

    private func createDatabase(template: String?) async throws -> String {
        let running = try await running()
        let name = "test_\(databaseCounter.add(1, ordering: .relaxed).newValue)"
        let templateClause = template.map { " TEMPLATE \"\($0)\"" } ?? ""
        _ = try await running.admin.query("CREATE DATABASE \"\(name)\"\(templateClause)")
        return running.cluster.databaseURL(database: name)
    }

    private func createMigratedTemplate() async throws -> String {
        let url = try await createDatabase(template: nil)
        let migrator = try HeraldMigrations.migrator(appMigrations: Self.repositoryMigrations)
        // A template must have no open connection when it is copied: this one closes before the thread ends.
        try await offloaded {
            let connection = try PGConnection(url: url)
            try migrator.migrate(on: connection)
        }
        return String(url.split(separator: "/").last ?? "")
    }

    private func running() async throws -> Running {
        let task = startup.withLock { task in
            if let task { return task }
            let started = Task { try await offloaded { try self.start() } }
            task = started
            return started
        }
        return try await task.value
    }

    private func start() throws -> Running {
        let cluster = try Self.startCluster()
        clusterToStop.withLock { $0 = cluster }
        atexit { TestPostgres.shared.stopAtExit() }
        return Running(cluster: cluster, admin: PostgresClient(databaseURL: cluster.databaseURL(), applicationName: "herald-tests"))
    }

    /// Starts a cluster on a free port; another process may grab the port in between, so try a few.
    private static func startCluster() throws -> LocalPostgresCluster {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("herald-test-\(getpid())-\(UUID().uuidString.prefix(8))")
        var lastError: (any Error)?
        for _ in 0..<3 {
            let cluster = LocalPostgresCluster(directory: directory, port: try LocalPostgresCluster.freePort(), options: .init(durable: false))
            do {
                try cluster.start()
                return cluster
            } catch {
                lastError = error
            }
        }
        try? FileManager.default.removeItem(at: directory)
        throw lastError ?? LocalClusterError(message: "the test cluster did not start")
    }

    private func stopAtExit() {
        guard let cluster = clusterToStop.withLock({ $0.take() }) else { return }
        try? cluster.stop(immediately: true)
        try? FileManager.default.removeItem(at: cluster.directory)
    }
}
