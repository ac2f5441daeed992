import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerCrypto
@testable import MaskinportenEmulator

/// Keys for the emulator's tests.
enum Keys {
    static let client: RSAPrivateKey = try! SharedKeys.privateKey("rsa2048")
    static let stranger: RSAPrivateKey = try! SharedKeys.privateKey("stranger")
}

/// Builds grants by hand, breaking one rule at a time.
struct GrantForge {
    var issuer: String
    var clientID = "client-1"
    var kid: String? = "kid-1"
    var key: RSAPrivateKey = Keys.client
    var algorithm: SigningAlgorithm = .rs256
    var header: [String: JSONValue]? = nil

    func claims(now: Date = Date()) -> [String: JSONValue] {
        let iat = Int(now.timeIntervalSince1970)
        return [
            "aud": .string(issuer), "iss": .string(clientID), "iat": .number(Double(iat)), "exp": .number(Double(iat + 120)),
            "jti": .string(UUID().uuidString), "scope": "altinn:serviceowner/notifications.create",
        ]
    }

    func sign(_ claims: [String: JSONValue]) throws -> String {
        var header: [String: JSONValue] = self.header ?? ["alg": .string(algorithm.rawValue)]
        if self.header == nil, let kid { header["kid"] = .string(kid) }
        return try JWS.sign(header: header, payload: claims, key: key, algorithm: algorithm)
    }

    func grant(_ change: (inout [String: JSONValue]) -> Void = { _ in }) throws -> String {
        var claims = claims()
        change(&claims)
        return try sign(claims)
    }
}

func makeEmulator() throws -> Emulator {
    let emulator = try Emulator.forTests(issuer: "http://127.0.0.1:1/")
    emulator.register(
        RegisteredClient(
            clientID: "client-1",
            scopes: ["altinn:serviceowner/notifications.create", "altinn:serviceowner/instances.read"],
            keys: [try Keys.client.publicKey.jwk(kid: "kid-1")]
        ))
    return emulator
}

@Suite("Emulator: grant rules", .sharedKeys)
struct GrantRuleTests {
    @Test("a valid grant gets a token with Maskinporten's answer fields", arguments: SigningAlgorithm.allCases)
    func validGrant(_ algorithm: SigningAlgorithm) throws {
        let emulator = try makeEmulator()
        let forge = GrantForge(issuer: emulator.issuer, algorithm: algorithm)
        let answer = try emulator.issueToken(assertion: forge.grant()).get()
        #expect(Set(answer.keys) == ["access_token", "token_type", "expires_in", "scope"])
        #expect(answer["token_type"] == "Bearer")
        #expect(answer["expires_in"] == 120)
        #expect(answer["scope"] == "altinn:serviceowner/notifications.create")
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var violation: GrantViolation
        var make: @Sendable (GrantForge) throws -> String
        var testDescription: String { "\(name) → \(violation.rawValue)" }
    }

    static let cases: [Case] = [
        Case(name: "wrong aud", violation: .wrongAudience) { try $0.grant { $0["aud"] = "https://maskinporten.no/" } },
        Case(name: "token endpoint as aud", violation: .wrongAudience) { forge in try forge.grant { $0["aud"] = .string(forge.issuer + "token") } },
        Case(name: "exp - iat > 120", violation: .lifetimeTooLong) { try $0.grant { $0["exp"] = .number($0["iat"]!.number! + 121) } },
        Case(name: "iat 11 s ahead", violation: .issuedAtSkew) {
            try $0.grant {
                $0["iat"] = .number($0["iat"]!.number! + 11)
                $0["exp"] = .number($0["iat"]!.number! + 60)
            }
        },
        Case(name: "iat 11 s behind", violation: .issuedAtSkew) { try $0.grant { $0["iat"] = .number($0["iat"]!.number! - 11) } },
        Case(name: "expired", violation: .expired) { try $0.grant { $0["exp"] = .number($0["iat"]!.number! - 1) } },
        Case(name: "unknown kid", violation: .unknownKid) {
            var forge = $0
            forge.kid = "nope"
            return try forge.grant()
        },
        Case(name: "no kid or x5c", violation: .noKeyReference) {
            var forge = $0
            forge.kid = nil
            return try forge.grant()
        },
        Case(name: "bad signature (another key)", violation: .badSignature) {
            var forge = $0
            forge.key = Keys.stranger
            return try forge.grant()
        },
        Case(name: "bad signature (tampered claims)", violation: .badSignature) { forge in
            let parts = try forge.grant().split(separator: ".")
            let tampered = try JSONEncoder().encode(forge.claims().merging(["scope": "altinn:serviceowner/instances.read"]) { $1 })
            return "\(parts[0]).\(Base64.urlEncoded(Array(tampered))).\(parts[2])"
        },
        Case(name: "HS256", violation: .unsupportedAlgorithm) {
            var forge = $0
            forge.header = ["alg": "HS256", "kid": "kid-1"]
            return try forge.grant()
        },
        Case(name: "unknown scope", violation: .unknownScope) { try $0.grant { $0["scope"] = "altinn:serviceowner/notifications.create altinn:admin" } },
        Case(name: "extra claim", violation: .extraClaims) { try $0.grant { $0["sub"] = "someone" } },
        Case(name: "resource not an array", violation: .resourceNotArray) { try $0.grant { $0["resource"] = "https://example.no/api" } },
        Case(name: "consumer_org a number", violation: .invalidConsumerOrg) { try $0.grant { $0["consumer_org"] = 991_825_827 } },
        Case(name: "authorization_details not a system user", violation: .invalidAuthorizationDetails) {
            try $0.grant { $0["authorization_details"] = .array([.object(["type": "urn:other"])]) }
        },
        Case(name: "missing scope", violation: .missingClaim) { try $0.grant { $0["scope"] = nil } },
        Case(name: "unknown client", violation: .unknownClient) { try $0.grant { $0["iss"] = "client-2" } },
        Case(name: "not a JWT", violation: .notAJWT) { _ in "not-a-jwt" },
    ]

    @Test("each broken rule is refused with Maskinporten's error shape and its code", arguments: cases)
    func refused(_ rule: Case) throws {
        let emulator = try makeEmulator()
        let grant = try rule.make(GrantForge(issuer: emulator.issuer))
        let result = emulator.issueToken(assertion: grant)
        guard case .failure(let refusal) = result else {
            Issue.record("\(rule.name) was accepted")
            return
        }
        #expect(refusal.violation == rule.violation, "\(rule.name): \(refusal.violation.description(detail: refusal.detail))")
    }

    @Test("a reused jti is refused the second time")
    func reusedJTI() throws {
        let emulator = try makeEmulator()
        let grant = try GrantForge(issuer: emulator.issuer).grant()
        #expect(throws: Never.self) { try emulator.issueToken(assertion: grant).get() }
        guard case .failure(let refusal) = emulator.issueToken(assertion: grant) else {
            Issue.record("a reused grant was accepted")
            return
        }
        #expect(refusal.violation == .reusedJTI)
    }

    @Test("delegation claims of the right shape pass")
    func delegation() throws {
        let emulator = try makeEmulator()
        let grant = try GrantForge(issuer: emulator.issuer).grant {
            $0["resource"] = .array(["https://example.no/api"])
            $0["consumer_org"] = "991825827"
            $0["authorization_details"] = .array([
                .object([
                    "type": "urn:altinn:systemuser",
                    "systemuser_org": .object(["authority": "iso6523-actorid-upis", "ID": "0192:991825827"]),
                ])
            ])
        }
        #expect(throws: Never.self) { try emulator.issueToken(assertion: grant).get() }
    }

    @Test("an x5c grant passes with a registered certificate and is refused with another")
    func x5c() async throws {
        let scratch = try TemporaryDirectory()
        var pem = try Keys.client.pkcs8PEM()
        let keyPath = try scratch.write("key.pem", Data(pem))
        pem.resetSecretBytes()
        try await Command.openssl("req", "-x509", "-key", keyPath, "-out", scratch.path("cert.pem"), "-days", "2", "-subj", "/CN=Org/serialNumber=991825827")
        let certificate = try Certificate.chain(pem: Array(Data(contentsOf: URL(fileURLWithPath: scratch.path("cert.pem")))))[0]
        let x5c = Base64.standardEncoded(certificate.der)
        let emulator = try makeEmulator()
        var forge = GrantForge(issuer: emulator.issuer)
        forge.header = ["alg": "RS256", "x5c": .array([.string(x5c)])]
        guard case .failure(let refusal) = emulator.issueToken(assertion: try forge.grant()) else {
            Issue.record("an unregistered certificate was accepted")
            return
        }
        #expect(refusal.violation == .untrustedCertificate)
        emulator.register(RegisteredClient(clientID: "client-1", scopes: ["altinn:serviceowner/notifications.create"], certificates: [x5c]))
        #expect(throws: Never.self) { try emulator.issueToken(assertion: forge.grant()).get() }
    }
}
