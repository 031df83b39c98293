import ArgumentParser
import Foundation
import HeraldServer

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print an HS256 JWT for development.")

    @Option(name: .long, help: "The Postgres role the token carries.") var role: String = "authenticated"
    @Option(name: .long, help: "The subject (user id).") var sub: String?
    @Option(name: .long, help: "Seconds until the token expires.") var expiresIn: Int64 = 3600
    @Option(name: .long, help: "Signing secret (env: HERALD_JWT_SECRET, JWT_SECRET; default: the secret of herald dev).") var jwtSecret: String?

    func run() async throws {
        guard expiresIn > 0 else { throw CommandFailure("--expires-in must be positive") }
        // Inside a `herald dev` folder the development secret is used when none is given.
        let devSecret = try? String(contentsOf: Dev.secretFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let secret = try Serve.secret(jwtSecret ?? Environment.value("JWT_SECRET") ?? devSecret)
        let claims = TokenIssuer.claims(role: role, subject: sub, expiresIn: expiresIn, now: Int64(Date().timeIntervalSince1970))
        print(try await TokenIssuer.sign(claims, secret: secret))
    }
}
