import Foundation
import HeraldCore
import HeraldPostgres
import HeraldServer
import HeraldTestSupport
import Logging

/// A real Herald serving on a free port, against its own freshly migrated database in the shared throwaway
/// PostgreSQL cluster.
final class HeraldInstance: Sendable {
    static let secret = "herald-test-secret-long-enough-for-hs256-hs384-and-hs512-0123456789"

    let port: Int
    let databaseURL: String
    let database: PostgresClient
    /// The replication slot the server streamed from, if it used the replication source.
    private let slot: String?
    private let server: Task<Void, any Error>

    private init(port: Int, databaseURL: String, slot: String?, server: Task<Void, any Error>) {
        self.port = port
        self.databaseURL = databaseURL
        self.database = PostgresClient(databaseURL: databaseURL)
        self.slot = slot
        self.server = server
    }

    static func start(_ adjust: (inout ServerConfiguration) -> Void = { _ in }) async throws -> HeraldInstance {
        let databaseURL = try await TestPostgres.shared.makeMigratedDatabase()
        var logger = Logger(label: "herald.test")
        logger.logLevel = ProcessInfo.processInfo.environment["HERALD_TEST_LOG"] != nil ? .debug : .critical
        var configuration = ServerConfiguration(host: "127.0.0.1", port: 0, databaseURL: databaseURL, jwtSecret: secret)
        // Tests choose their source; replication ones need a slot of their own (slots are per cluster).
        configuration.changeSource = ChangeSourceConfiguration(kind: .trigger, slot: "test_" + UUID().uuidString.prefix(8).lowercased())
        adjust(&configuration)
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let server = Task {
            defer { continuation.finish() }
            try await HeraldServer.run(configuration, logger: logger) { port in continuation.yield(port) }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            _ = try await server.value
            throw HarnessError("Herald stopped before it was serving")
        }
        let slot = configuration.changeSource.kind == .trigger ? nil : configuration.changeSource.slot
        return HeraldInstance(port: port, databaseURL: databaseURL, slot: slot, server: server)
    }

    func stop() async {
        server.cancel()
        _ = try? await server.value
        if let slot { try? await dropReplicationSlot(slot, databaseURL: databaseURL) }
        database.close()
    }

    func token(role: String = "authenticated", expiresIn: Int64 = 3600, extra: JSONObject = [:]) async throws -> String {
        var claims = TokenIssuer.claims(role: role, subject: "8d0fd2b3-9ca7-4c8c-a8a9-5b2d1e1f2a10", expiresIn: expiresIn, now: Int64(Date().timeIntervalSince1970))
        for member in extra.members { claims[member.key] = member.value }
        return try await TokenIssuer.sign(claims, secret: Self.secret)
    }

    /// Opens a socket with a valid token unless told otherwise.
    func socket(vsn: String? = "2.0.0", path: String = "/socket/websocket", token: String? = nil) async throws -> TestWebSocket {
        let apikey: String
        if let token { apikey = token } else { apikey = try await self.token() }
        var target = "\(path)?apikey=\(apikey)"
        if let vsn { target += "&vsn=\(vsn)" }
        return try await TestWebSocket.connect(port: port, target: target)
    }

    /// Runs several statements at once (no parameters).
    func script(_ statements: String) async throws {
        try await database.withConnection { try $0.executeScript(statements) }
    }

    @discardableResult
    func sql(_ statement: String, _ params: [String?] = []) async throws -> PGRows {
        try await database.query(statement, params)
    }
}

/// Slots belong to the shared cluster (and count against its `max_replication_slots`): a test's slot must not
/// outlive it. Waits for its WAL sender to let go first.
func dropReplicationSlot(_ slot: String, databaseURL: String) async throws {
    let database = PostgresClient(databaseURL: databaseURL)
    defer { database.close() }
    for _ in 0..<400 {
        let rows = try await database.query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active",
            [slot]
        )
        if rows.count == 1 { return }
        if try await database.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [slot]).count == 0 { return }
        try await Task.sleep(for: .milliseconds(25))
    }
    throw HarnessError("replication slot \(slot) stayed active")
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` against a fresh Herald and always stops it.
func withHerald(_ adjust: (inout ServerConfiguration) -> Void = { _ in }, _ body: (HeraldInstance) async throws -> Void) async throws {
    let herald = try await HeraldInstance.start(adjust)
    do {
        try await body(herald)
    } catch {
        await herald.stop()
        throw error
    }
    await herald.stop()
}

extension TestWebSocket {
    /// The next text frame parsed as JSON, skipping nothing.
    func receiveJSON(timeout: Duration = .seconds(30)) async throws -> JSONValue {
        let frame = try await receive(timeout: timeout)
        guard frame.isText else { throw HarnessError("expected a text frame, got \(frame)") }
        return try JSONValue.parse(frame.payload)
    }

    /// V2: sends `[join_ref, ref, topic, event, payload]`.
    func push(_ joinRef: String?, _ ref: String?, _ topic: String, _ event: String, _ payload: JSONValue) async throws {
        let frame: JSONValue = [joinRef.map(JSONValue.string) ?? .null, ref.map(JSONValue.string) ?? .null, .string(topic), .string(event), payload]
        try await sendText(frame.jsonString)
    }

    /// V2: joins `topic` with `config`, returns the reply and the frames up to and including the system message
    /// when bindings were given.
    @discardableResult
    func joinV2(_ topic: String, config: JSONValue, ref: String = "1") async throws -> (reply: JSONValue, system: JSONValue?) {
        try await push(ref, ref, topic, "phx_join", ["config": config])
        let reply = try await receiveJSON()
        let hasBindings = !(config["postgres_changes"]?.arrayValue ?? []).isEmpty
        guard hasBindings, reply.arrayValue?[4]["status"] == "ok" else { return (reply, nil) }
        return (reply, try await receiveJSON())
    }
}
