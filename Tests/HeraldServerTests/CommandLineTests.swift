import Foundation
import HeraldCore
import HeraldPostgres
import HeraldServer
import HeraldTestSupport
import Testing

/// The `herald` executable itself: migrations, tables, tokens, bad input, and a graceful SIGTERM.
@Suite struct CommandLineTests {
    /// The `herald` binary SwiftPM built next to the test bundle.
    static let herald = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("herald").path
    static let migrations = InteropTests.packageRoot.appendingPathComponent("migrations").path

    struct Outcome {
        var status: Int32
        var output: String
        var errors: String
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> Outcome {
        try await offloaded { try runBlocking(arguments, environment: environment) }
    }

    private static func runBlocking(_ arguments: [String], environment: [String: String]) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: herald)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(status: process.terminationStatus, output: String(decoding: out, as: UTF8.self), errors: String(decoding: err, as: UTF8.self))
    }

    @Test func migrateTablesAndToken() async throws {
        let url = try await TestPostgres.shared.makeDatabase()
        let first = try await Self.run(["migrate", "--database-url", url, "--migrations", Self.migrations])
        #expect(first.status == 0)
        #expect(first.output.contains("applied herald/0001_realtime.sql") && first.output.contains("applied app/0001_chat.sql"))
        let second = try await Self.run(["migrate", "--migrations", Self.migrations], environment: ["DATABASE_URL": url])
        #expect(second.status == 0 && second.output.contains("Nothing to apply"))
        let status = try await Self.run(["migrate", "status", "--database-url", url, "--migrations", Self.migrations])
        #expect(status.status == 0 && status.output.contains("app/0001_chat.sql"))

        #expect(try await Self.run(["tables", "list", "--database-url", url]).output == "public.message_receipts\npublic.messages\n")
        #expect(try await Self.run(["tables", "disable", "public.messages", "--database-url", url]).status == 0)
        #expect(try await Self.run(["tables", "list", "--database-url", url]).output == "public.message_receipts\n")
        #expect(try await Self.run(["tables", "enable", "public.messages", "--database-url", url]).status == 0)
        let missing = try await Self.run(["tables", "enable", "public.nope", "--database-url", url])
        #expect(missing.status != 0 && missing.errors.contains("does not exist"))

        let secret = String(repeating: "s", count: 40)
        let token = try await Self.run(["token", "--role", "service_role", "--sub", "u1", "--expires-in", "60"], environment: ["JWT_SECRET": secret])
        let verifier = try await TokenVerifier.make(secret: secret)
        guard case .valid(let claims) = verifier.verify(token.output.trimmingCharacters(in: .whitespacesAndNewlines), now: Int64(Date().timeIntervalSince1970)) else {
            Issue.record("herald token printed an invalid token: \(token.output) \(token.errors)")
            return
        }
        #expect(claims.role == "service_role" && claims.claims["sub"] == "u1")
    }

    @Test func badInputExitsWithOneClearLine() async throws {
        let unreachable = try await Self.run(["migrate", "--database-url", "postgres://postgres@127.0.0.1:1/none"])
        #expect(unreachable.status != 0)
        #expect(unreachable.errors.split(separator: "\n").count == 1 && unreachable.errors.contains("cannot connect"))
        let badURL = try await Self.run(["serve", "--database-url", "nonsense", "--jwt-secret", String(repeating: "s", count: 40)])
        #expect(badURL.status != 0 && badURL.errors.split(separator: "\n").count == 1)
        let noSecret = try await Self.run(["serve", "--database-url", "postgres://postgres@127.0.0.1:1/none"], environment: ["JWT_SECRET": "", "HERALD_JWT_SECRET": ""])
        #expect(noSecret.status != 0 && noSecret.errors.contains("JWT secret"))
    }

    @Test func sigtermClosesSocketsWithACloseFrameAndExits() async throws {
        let url = try await TestPostgres.shared.makeMigratedDatabase()
        let port = try LocalPostgresCluster.freePort()
        let secret = String(repeating: "k", count: 48)
        // The test process blocks or ignores SIGTERM for its in-process servers, and children inherit both;
        // python resets them before it executes herald, so herald sees signals as it would from a shell.
        let resetSignals = "import os,signal,sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); "
            + "[signal.signal(s, signal.SIG_DFL) for s in (signal.SIGTERM, signal.SIGINT)]; os.execv(sys.argv[1], sys.argv[1:])"
        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["python3", "-c", resetSignals, Self.herald, "serve", "--database-url", url, "--host", "127.0.0.1", "--port", String(port), "--jwt-secret", secret, "--log-level", "error", "--source", "trigger"]
        try server.run()
        defer { if server.isRunning { server.terminate() } }
        let token = try await TokenIssuer.sign(TokenIssuer.claims(role: "anon", subject: nil, expiresIn: 60, now: Int64(Date().timeIntervalSince1970)), secret: secret)
        var socket: TestWebSocket?
        for _ in 0..<100 where socket == nil {
            socket = try? await TestWebSocket.connect(port: port, target: "/socket/websocket?apikey=\(token)&vsn=2.0.0")
            if socket == nil { try await Task.sleep(for: .milliseconds(100)) }
        }
        guard let socket else {
            Issue.record("herald serve did not accept connections")
            return
        }
        kill(server.processIdentifier, SIGTERM)
        #expect(try await socket.receive(until: { $0.isClose }).last?.closeCode == 1001)
        let status = try await offloaded {
            server.waitUntilExit()
            return server.terminationStatus
        }
        #expect(status == 0)
    }
}
