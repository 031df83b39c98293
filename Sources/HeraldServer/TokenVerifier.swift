import HeraldCore
import JWTKit
import Synchronization

/// Verifies client JWTs and classifies failures with upstream's strings (reference sections 1.2, 2.2 and 6.2):
/// HS256/384/512 with the configured secret; RS/PS/ES/EdDSA with the public keys of a JWKS, found by the token's
/// `kid`; then `exp`, `role` and the required claims. Verification itself is synchronous, so it can run inline with
/// the socket's message handling; jwt-kit provides the signature algorithms.
public struct TokenVerifier: Sendable {
    private let algorithms: [String: any JWTAlgorithm]
    private let keysByID: [String: PublicKey]
    /// Claims every token must carry with exactly these values (upstream's `JWT_CLAIM_VALIDATORS`).
    private let requiredClaims: JSONObject
    /// Tokens whose signature and claims were checked: many sockets present the same token (an app's anon key), and
    /// a second check only needs the expiry.
    private let verified = VerifiedTokens()

    /// A JWKS key: the algorithm its JWK names (or implies) and jwt-kit's verifier for it.
    private struct PublicKey: Sendable {
        let algorithm: String
        let verifier: any JWTAlgorithm
    }

    /// The shortest secret accepted, as Supabase documents for its JWT secret (and HS256 needs 32 bytes of key).
    public static let minimumSecretBytes = 32

    public struct WeakSecret: Error, CustomStringConvertible {
        public var description: String { "the JWT secret must be at least \(TokenVerifier.minimumSecretBytes) bytes long" }
    }

    public struct InvalidKeySet: Error, CustomStringConvertible {
        public let description: String
    }

    /// HS384 and HS512 are offered only when the secret is at least as long as their digest (48 and 64 bytes).
    /// `jwks` is a JSON Web Key Set (`{"keys":[…]}`) of public keys, each with a `kid`.
    public static func make(secret: String, jwks: String? = nil, requiredClaims: JSONObject = [:]) async throws -> TokenVerifier {
        guard secret.utf8.count >= minimumSecretBytes else { throw WeakSecret() }
        let keys = JWTKeyCollection()
        var algorithms: [String: any JWTAlgorithm] = [:]
        let digests: [(String, DigestAlgorithm, Int)] = [("HS256", .sha256, 32), ("HS384", .sha384, 48), ("HS512", .sha512, 64)]
        for (name, digest, keyBytes) in digests where secret.utf8.count >= keyBytes {
            let kid = JWKIdentifier(string: name)
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: kid)
            algorithms[name] = try await keys.getKey(for: kid)
        }
        var keysByID: [String: PublicKey] = [:]
        if let jwks {
            keysByID = try await publicKeys(jwks)
        }
        return TokenVerifier(algorithms: algorithms, keysByID: keysByID, requiredClaims: requiredClaims)
    }

    private init(algorithms: [String: any JWTAlgorithm], keysByID: [String: PublicKey], requiredClaims: JSONObject) {
        self.algorithms = algorithms
        self.keysByID = keysByID
        self.requiredClaims = requiredClaims
    }

    private static func publicKeys(_ jwks: String) async throws -> [String: PublicKey] {
        guard case .array(let entries)? = (try? JSONValue.parse(Array(jwks.utf8)))?["keys"] else {
            throw InvalidKeySet(description: "the JWKS is not a JSON object with a \"keys\" array")
        }
        var keysByID: [String: PublicKey] = [:]
        for entry in entries {
            guard case .string(let kid)? = entry["kid"] else { throw InvalidKeySet(description: "a JWKS key has no \"kid\"") }
            guard let algorithm = entry["alg"]?.stringValue ?? defaultAlgorithm(entry) else {
                throw InvalidKeySet(description: "JWKS key \"\(kid)\": unsupported key type")
            }
            do {
                let collection = JWTKeyCollection()
                try await collection.add(jwksJSON: JSONValue.object(["keys": [entry]]).jsonString)
                let verifier = try await collection.getKey(for: JWKIdentifier(string: kid), alg: algorithm)
                keysByID[kid] = PublicKey(algorithm: algorithm, verifier: verifier)
            } catch {
                throw InvalidKeySet(description: "JWKS key \"\(kid)\": \(error)")
            }
        }
        return keysByID
    }

    /// The algorithm a JWK without `alg` is used with.
    private static func defaultAlgorithm(_ key: JSONValue) -> String? {
        switch (key["kty"]?.stringValue, key["crv"]?.stringValue) {
        case ("RSA", _): "RS256"
        case ("EC", "P-256"): "ES256"
        case ("EC", "P-384"): "ES384"
        case ("EC", "P-521"): "ES512"
        case ("OKP", "Ed25519"): "EdDSA"
        default: nil
        }
    }

    /// Checks signature, `exp`, the presence of `role` and `exp`, and the required claims. `now` is seconds since the
    /// epoch.
    public func verify(_ rawToken: String, now: Int64) -> TokenCheck {
        if let claims = verified.claims(for: rawToken) { return Self.recheck(claims, now: now) }
        let check = verifySignatureAndClaims(rawToken, now: now)
        if case .valid(let claims) = check { verified.remember(rawToken, claims) }
        return check
    }

    private func verifySignatureAndClaims(_ rawToken: String, now: Int64) -> TokenCheck {
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
        let signer = Self.signerError(kid: header["kid"]?.stringValue)
        guard case .string(let alg)? = header["alg"] else { return signer }
        let algorithm: any JWTAlgorithm
        if alg.hasPrefix("HS") {
            guard let secretAlgorithm = algorithms[alg] else { return signer }
            algorithm = secretAlgorithm
        } else {
            // Asymmetric tokens only through the JWKS, by kid and with the key's own algorithm (never `none`).
            guard case .string(let kid)? = header["kid"], let key = keysByID[kid], key.algorithm == alg else { return signer }
            algorithm = key.verifier
        }
        let signingInput = Array(token.utf8.prefix(parts[0].utf8.count + 1 + parts[1].utf8.count))
        guard (try? algorithm.verify(signature, signs: signingInput)) == true else {
            return .invalid(code: "JwtSignatureError", message: "Failed to validate JWT signature")
        }
        for required in requiredClaims.members where claims[required.key] != required.value {
            return .invalid(code: "InvalidJWTToken", message: "Invalid value for JWT claim \"\(required.key)\"")
        }
        return Self.checkClaims(claims, now: now)
    }

    private static func signerError(kid: String?) -> TokenCheck {
        guard let kid else {
            return .invalid(code: "JwtSignerError", message: "Failed to generate JWT signer, check your JWT secret or JWKS configuration")
        }
        return .invalid(
            code: "JwtSignerError",
            message: "Failed to generate JWT signer for key ID (kid) \(JSONValue.string(kid).jsonString), check your JWT secret or JWKS configuration"
        )
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

/// A bounded memo of verified tokens (forgotten all at once when full: simple, and a refill costs one check each).
private final class VerifiedTokens: Sendable {
    private let tokens = Mutex<[String: TokenClaims]>([:])
    static let capacity = 4_096

    func claims(for token: String) -> TokenClaims? {
        tokens.withLock { $0[token] }
    }

    func remember(_ token: String, _ claims: TokenClaims) {
        tokens.withLock { tokens in
            if tokens.count >= Self.capacity { tokens.removeAll(keepingCapacity: true) }
            tokens[token] = claims
        }
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
