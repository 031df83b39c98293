import Foundation
import ArgumentParser
import HeraldCore
import HeraldServer
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Serve WebSocket clients from a migrated database.")

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var changeSource: ChangeSourceOptions

    @Option(name: .long, help: "Address to listen on (env: HERALD_HOST, HOST).")
    var host: String?

    @Option(name: .long, help: "Port to listen on (env: HERALD_PORT, PORT; default 4000).")
    var port: Int?

    @Option(name: .long, help: "HS256 secret that signs client tokens (env: HERALD_JWT_SECRET, JWT_SECRET).")
    var jwtSecret: String?

    @Option(name: .long, help: "Public keys for RS/ES/EdDSA tokens: a JWKS file, or the JWKS JSON itself (env: HERALD_JWKS, JWKS).")
    var jwks: String?

    @Option(name: .long, help: "Claims every token must carry, as JSON, e.g. '{\"iss\":\"my-auth\"}' (env: HERALD_JWT_CLAIM_VALIDATORS, JWT_CLAIM_VALIDATORS).")
    var jwtClaimValidators: String?

    @Option(name: .long, help: "Largest broadcast or presence payload, in KB.")
    var maxPayloadKb: Int = 3000

    @Option(name: .long, help: "Most sockets at once.")
    var maxConnections: Int = 100_000

    @Option(name: .long, help: "Most channel joins per second over the server.")
    var maxJoinsPerSecond: Int = 20_000

    @Option(name: .long, help: "Most broadcasts and presence pushes one channel may send per second.")
    var maxEventsPerSecond: Int = 1_000

    @Option(name: .long, help: "Most channels on one socket.")
    var maxChannelsPerSocket: Int = 100

    func run() async throws {
        let logger = try logging.makeLogger()
        var configuration = try ServerConfiguration(
            host: host ?? Environment.value("HOST") ?? "0.0.0.0",
            port: try Self.port(port),
            databaseURL: database.resolved(),
            jwtSecret: Self.secret(jwtSecret)
        )
        guard maxPayloadKb > 0 else { throw CommandFailure("--max-payload-kb must be positive") }
        configuration.sessionLimits.maxPayloadBytes = maxPayloadKb * 1000
        for (name, value) in [("--max-connections", maxConnections), ("--max-joins-per-second", maxJoinsPerSecond),
                              ("--max-events-per-second", maxEventsPerSecond), ("--max-channels-per-socket", maxChannelsPerSocket)]
        where value <= 0 {
            throw CommandFailure("\(name) must be positive")
        }
        configuration.maxConnections = maxConnections
        configuration.maxJoinsPerSecond = maxJoinsPerSecond
        configuration.sessionLimits.maxEventsPerSecond = maxEventsPerSecond
        configuration.sessionLimits.maxChannels = maxChannelsPerSocket
        configuration.changeSource = try changeSource.resolved()
        configuration.jwks = try Self.jwks(jwks ?? Environment.value("JWKS"))
        configuration.requiredClaims = try Self.requiredClaims(jwtClaimValidators ?? Environment.value("JWT_CLAIM_VALIDATORS"))
        let url = "ws://\(configuration.host):"
        try await Self.failingCleanly {
            try await HeraldServer.run(configuration, logger: logger) { port in
                logger.info("herald is serving", metadata: ["url": "\(url)\(port)/socket/websocket"])
            }
        }
    }

    static func port(_ given: Int?) throws -> Int {
        if let given { return given }
        guard let text = Environment.value("PORT") else { return 4000 }
        guard let port = Int(text), (0...65535).contains(port) else { throw CommandFailure("PORT must be a port number, got '\(text)'") }
        return port
    }

    /// Inline JSON (starting with `{`) or the path of a file holding it.
    static func jwks(_ given: String?) throws -> String? {
        guard let given, !given.isEmpty else { return nil }
        if given.hasPrefix("{") { return given }
        guard let text = try? String(contentsOfFile: given, encoding: .utf8) else { throw CommandFailure("cannot read the JWKS file \(given)") }
        return text
    }

    static func requiredClaims(_ given: String?) throws -> JSONObject {
        guard let given, !given.isEmpty else { return [:] }
        guard case .object(let claims)? = try? JSONValue.parse(Array(given.utf8)) else {
            throw CommandFailure("JWT claim validators must be a JSON object, got '\(given)'")
        }
        return claims
    }

    static func secret(_ given: String?) throws -> String {
        guard let secret = given ?? Environment.value("JWT_SECRET"), !secret.isEmpty else {
            throw CommandFailure("no JWT secret: pass --jwt-secret or set JWT_SECRET")
        }
        return secret
    }
}
