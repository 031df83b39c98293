import HeraldCore
import JWTKit

/// Verifies client JWTs (HS256/384/512 with the configured secret) and classifies failures with upstream's
/// strings (reference sections 1.2 and 2.2). Verification itself is synchronous, so it can run inline with the
/// socket's message handling; jwt-kit provides the signature algorithms.
public struct TokenVerifier: Sendable {
    private let algorithms: [String: any JWTAlgorithm]

    /// The shortest secret accepted, as Supabase documents for its JWT secret (and HS256 needs 32 bytes of key).
    public static let minimumSecretBytes = 32

    public struct WeakSecret: Error, CustomStringConvertible {
        public var description: String { "the JWT secret must be at least \(TokenVerifier.minimumSecretBytes) bytes long" }
    }

    /// HS384 and HS512 are offered only when the secret is at least as long as their digest (48 and 64 bytes).
    public static func make(secret: String) async throws -> TokenVerifier {
        guard secret.utf8.count >= minimumSecretBytes else { throw WeakSecret() }
        let keys = JWTKeyCollection()
        var algorithms: [String: any JWTAlgorithm] = [:]
        let digests: [(String, DigestAlgorithm, Int)] = [("HS256", .sha256, 32), ("HS384", .sha384, 48), ("HS512", .sha512, 64)]
        for (name, digest, keyBytes) in digests where secret.utf8.count >= keyBytes {
            let kid = JWKIdentifier(string: name)
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: kid)
            algorithms[name] = try await keys.getKey(for: kid)
        }
        return TokenVerifier(algorithms: algorithms)
    }

    /// Checks signature, `exp` and the presence of `role` and `exp`. `now` is seconds since the epoch.
    public func verify(_ rawToken: String, now: Int64) -> TokenCheck {
        let malformed = TokenCheck.invalid(code: "MalformedJWT", message: "The token provided is not a valid JWT")
        // Upstream strips whitespace and URL-decoding artefacts before verifying.
        let token = rawToken.filter { !$0.isWhitespace }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
            let headerBytes = Base64URL.decode(parts[0]),
            let payloadBytes = Base64URL.decode(parts[1]),
            let signature = Base64URL.decode(parts[2]),
            case .object(let header)? = try? JSONValue.parse(headerBytes),
            case .object(let claims)? = try? JSONValue.parse(payloadBytes)
        else { return malformed }
        guard case .string(let alg)? = header["alg"], let algorithm = algorithms[alg] else {
            return .invalid(
                code: "JwtSignerError",
                message: "Failed to generate JWT signer, check your JWT secret or JWKS configuration"
            )
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard (try? algorithm.verify(signature, signs: signingInput)) == true else {
            return .invalid(code: "JwtSignatureError", message: "Failed to validate JWT signature")
        }
        return Self.checkClaims(claims, now: now)
    }

    /// A token verified earlier, checked again at `now`: only its expiry can have changed.
    public static func recheck(_ claims: TokenClaims, now: Int64) -> TokenCheck {
        claims.expiresAt > now ? .valid(claims) : .expired(secondsAgo: now - claims.expiresAt)
    }

    static func checkClaims(_ claims: JSONObject, now: Int64) -> TokenCheck {
        let missing = TokenCheck.invalid(code: "InvalidJWTToken", message: "Fields `role` and `exp` are required in JWT")
        guard let expValue = claims["exp"] else { return missing }
        guard let exp = expValue.doubleValue.map({ Int64($0.rounded()) }) else {
            return .invalid(code: "InvalidJWTToken", message: "Token expiration time is invalid")
        }
        guard exp > 0 else { return .invalid(code: "InvalidJWTToken", message: "Token expiration time is invalid") }
        guard exp > now else { return .expired(secondsAgo: now - exp) }
        guard case .string(let role)? = claims["role"] else { return missing }
        return .valid(TokenClaims(role: role, expiresAt: exp, claims: claims))
    }
}

/// Signs tokens with the shared secret: `herald token` for development, and tests.
public enum TokenIssuer {
    /// An HMAC-signed JWT (`HS256`, `HS384` or `HS512`) carrying exactly `claims`; the secret must be at least as
    /// long as the digest.
    public static func sign(_ claims: JSONObject, secret: String, algorithm: String = "HS256") async throws -> String {
        guard secret.utf8.count >= TokenVerifier.minimumSecretBytes else { throw TokenVerifier.WeakSecret() }
        let digest: DigestAlgorithm =
            switch algorithm {
            case "HS384": .sha384
            case "HS512": .sha512
            default: .sha256
            }
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
        let signer = try await keys.getKey()
        let header: JSONValue = ["alg": .string(algorithm), "typ": "JWT"]
        let signingInput = Base64URL.encode(header.jsonBytes) + "." + Base64URL.encode(JSONValue.object(claims).jsonBytes)
        let signature = try signer.sign(Array(signingInput.utf8))
        return signingInput + "." + Base64URL.encode(signature)
    }

    /// The claims of a development token: `role`, optional `sub`, `iat` and `exp`.
    public static func claims(role: String, subject: String?, expiresIn seconds: Int64, now: Int64) -> JSONObject {
        var claims: JSONObject = ["role": .string(role)]
        if let subject { claims["sub"] = .string(subject) }
        claims["iat"] = .int(now)
        claims["exp"] = .int(now + seconds)
        return claims
    }
}
