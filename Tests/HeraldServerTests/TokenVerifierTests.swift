import Crypto
import Foundation
import HeraldCore
import HeraldServer
import Testing

/// Token verification without a server: the secret, a JWKS of public keys, required claims (reference 1.2, 6.2).
@Suite struct TokenVerifierTests {
    static let secret = "a-test-secret-that-is-long-enough-for-hs256-0123456789"
    let ecKey = P256.Signing.PrivateKey()
    let edKey = Curve25519.Signing.PrivateKey()

    var jwks: String {
        let point = ecKey.publicKey.rawRepresentation
        let keys: JSONValue = [
            ["kty": "EC", "crv": "P-256", "kid": "ec-1", "x": .string(Base64URL.encode(Array(point.prefix(32)))), "y": .string(Base64URL.encode(Array(point.suffix(32))))],
            ["kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "alg": "EdDSA", "x": .string(Base64URL.encode(Array(edKey.publicKey.rawRepresentation)))],
        ]
        return JSONValue.object(["keys": keys]).jsonString
    }

    static func claims(_ extra: JSONObject = [:]) -> JSONObject {
        var claims: JSONObject = ["role": "authenticated", "sub": "alice", "exp": .int(4_000_000_000)]
        for member in extra.members { claims[member.key] = member.value }
        return claims
    }

    func token(alg: String, kid: String?, claims: JSONObject = claims(), sign: (Data) throws -> Data) rethrows -> String {
        var header: JSONObject = ["alg": .string(alg), "typ": "JWT"]
        if let kid { header["kid"] = .string(kid) }
        let input = Base64URL.encode(JSONValue.object(header).jsonBytes) + "." + Base64URL.encode(JSONValue.object(claims).jsonBytes)
        return input + "." + Base64URL.encode(Array(try sign(Data(input.utf8))))
    }

    func es256(kid: String? = "ec-1", claims: JSONObject = claims()) throws -> String {
        try token(alg: "ES256", kid: kid, claims: claims) { try ecKey.signature(for: $0).rawRepresentation }
    }

    @Test func asymmetricKeysFromTheJWKSByKid() async throws {
        let verifier = try await TokenVerifier.make(secret: Self.secret, jwks: jwks)
        guard case .valid(let claims) = verifier.verify(try es256(), now: 1_000) else { Issue.record("ES256 refused"); return }
        #expect(claims.role == "authenticated")
        let eddsa = try token(alg: "EdDSA", kid: "ed-1") { try edKey.signature(for: $0) }
        #expect(verifier.verify(eddsa, now: 1_000) == .valid(TokenClaims(role: "authenticated", expiresAt: 4_000_000_000, claims: Self.claims())))
        let hs = try await TokenIssuer.sign(Self.claims(), secret: Self.secret)
        #expect(verifier.verify(hs, now: 1_000) != .invalid(code: "JwtSignatureError", message: "Failed to validate JWT signature"))
        if case .valid = verifier.verify(hs, now: 1_000) {} else { Issue.record("HS256 refused next to a JWKS") }
    }

    @Test func unknownKidWrongAlgorithmNoneAndForgeriesAreRefused() async throws {
        let verifier = try await TokenVerifier.make(secret: Self.secret, jwks: jwks)
        #expect(
            verifier.verify(try es256(kid: "other"), now: 1_000)
                == .invalid(code: "JwtSignerError", message: #"Failed to generate JWT signer for key ID (kid) "other", check your JWT secret or JWKS configuration"#)
        )
        #expect(
            verifier.verify(try es256(kid: nil), now: 1_000)
                == .invalid(code: "JwtSignerError", message: "Failed to generate JWT signer, check your JWT secret or JWKS configuration")
        )
        // The EC key used as if it were the Ed25519 one, and an unsigned token.
        let confused = try token(alg: "EdDSA", kid: "ec-1") { try ecKey.signature(for: $0).rawRepresentation }
        #expect(verifier.verify(confused, now: 1_000).failure?.code == "JwtSignerError")
        let unsigned = token(alg: "none", kid: nil) { _ in Data() }
        #expect(verifier.verify(unsigned, now: 1_000).failure?.code == "JwtSignerError")
        // A payload changed after signing, and a key the JWKS does not hold.
        let genuine = try es256().split(separator: ".")
        let forgedPayload = Base64URL.encode(JSONValue.object(Self.claims(["role": "service_role"])).jsonBytes)
        let forged = "\(genuine[0]).\(forgedPayload).\(genuine[2])"
        #expect(verifier.verify(forged, now: 1_000) == .invalid(code: "JwtSignatureError", message: "Failed to validate JWT signature"))
        let stranger = try token(alg: "ES256", kid: "ec-1") { try P256.Signing.PrivateKey().signature(for: $0).rawRepresentation }
        #expect(verifier.verify(stranger, now: 1_000) == .invalid(code: "JwtSignatureError", message: "Failed to validate JWT signature"))
        // Expiry still applies.
        #expect(verifier.verify(try es256(claims: Self.claims(["exp": 999])), now: 1_000) == .expired(secondsAgo: 1))
    }

    @Test func requiredClaimsMustMatchExactly() async throws {
        let verifier = try await TokenVerifier.make(secret: Self.secret, requiredClaims: ["iss": "herald-tests"])
        let missing = try await TokenIssuer.sign(Self.claims(), secret: Self.secret)
        #expect(verifier.verify(missing, now: 1_000) == .invalid(code: "InvalidJWTToken", message: #"Invalid value for JWT claim "iss""#))
        let wrong = try await TokenIssuer.sign(Self.claims(["iss": "elsewhere"]), secret: Self.secret)
        #expect(verifier.verify(wrong, now: 1_000).failure?.code == "InvalidJWTToken")
        let right = try await TokenIssuer.sign(Self.claims(["iss": "herald-tests"]), secret: Self.secret)
        if case .valid = verifier.verify(right, now: 1_000) {} else { Issue.record("a token with the required claim was refused") }
    }

    @Test func aTokenSeenBeforeStillExpiresOnTime() async throws {
        let verifier = try await TokenVerifier.make(secret: Self.secret)
        let token = try await TokenIssuer.sign(Self.claims(["exp": 2_000]), secret: Self.secret)
        if case .valid = verifier.verify(token, now: 1_000) {} else { Issue.record("a valid token was refused") }
        if case .valid = verifier.verify(token, now: 1_999) {} else { Issue.record("the remembered token was refused") }
        #expect(verifier.verify(token, now: 2_005) == .expired(secondsAgo: 5))
        // A forgery of a remembered token is not the same string: it is checked, and refused.
        let parts = token.split(separator: ".")
        #expect(verifier.verify("\(parts[0]).\(parts[1]).\(parts[2].dropLast(2))AA", now: 1_000).failure?.code == "JwtSignatureError")
    }

    @Test func aBadKeySetIsOneClearError() async throws {
        await #expect(throws: TokenVerifier.InvalidKeySet.self) { try await TokenVerifier.make(secret: Self.secret, jwks: "[]") }
        await #expect(throws: TokenVerifier.InvalidKeySet.self) {
            try await TokenVerifier.make(secret: Self.secret, jwks: #"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#)
        }
    }
}
