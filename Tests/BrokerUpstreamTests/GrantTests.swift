import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerConfig
@testable import BrokerCrypto
@testable import BrokerUpstream

@Suite("Grants", .sharedKeys)
struct GrantTests {
    func builder(extra: String = "", key: String? = nil) throws -> GrantBuilder {
        // No "alg" in the JWK: the configured algorithm decides.
        let fixture = try ConfigFixture(alg: nil)
        var yaml = ConfigFixture.profile + extra
        if let key { yaml = yaml.replacingOccurrences(of: "      encoded_jwk_file: notifications.jwk", with: key) }
        let path = try fixture.write(yaml)
        let profile = try #require(ConfigLoader.load(path: path).profiles.first)
        return GrantBuilder(profile: profile, credentials: try KeyLoader(environment: [:]).load(profile, file: path))
    }

    func decode(_ part: Substring) throws -> [String: Any] {
        let data = try TestKey.decodeBase64url(String(part))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    @Test("a grant has exactly Maskinporten's claims and header, and openssl verifies it", arguments: SigningAlgorithm.allCases)
    func grantShape(_ algorithm: SigningAlgorithm) async throws {
        let builder = try builder(extra: "\n    algorithm: \(algorithm)")
        let before = Int(Date().timeIntervalSince1970)
        let grant = try builder.makeGrant()
        let after = Int(Date().timeIntervalSince1970)
        let parts = grant.split(separator: ".")
        #expect(parts.count == 3)

        let header = try decode(parts[0])
        #expect(Set(header.keys) == ["alg", "kid"])
        #expect(header["alg"] as? String == algorithm.rawValue)
        #expect(header["kid"] as? String == "test-kid")

        let claims = try decode(parts[1])
        #expect(Set(claims.keys) == ["aud", "iss", "iat", "exp", "jti", "scope"], "no extra claims: Maskinporten refuses them")
        #expect(claims["aud"] as? String == "https://test.maskinporten.no/")
        #expect(claims["iss"] as? String == "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17")
        #expect(claims["scope"] as? String == "altinn:serviceowner/notifications.create")
        let iat = try #require(claims["iat"] as? Int)
        let exp = try #require(claims["exp"] as? Int)
        #expect((before...after).contains(iat))
        #expect(exp - iat == 120)
        #expect((claims["jti"] as? String)?.isEmpty == false)

        #expect(try await Keys.rsa2048.opensslVerify(jws: grant) == "Verified OK")
    }

    @Test("every grant has a fresh jti")
    func uniqueJTI() throws {
        let builder = try builder()
        let jtis = Set((0..<200).map { _ in builder.claims(now: Date()).jti })
        #expect(jtis.count == 200)
    }

    @Test("several scopes are joined by one space, and each environment sets its aud")
    func scopesAndAudience() throws {
        let builder = try builder().profile
        var profile = builder
        profile.scopes = ["a:one", "b:two", "c:three"]
        profile.environment = MaskinportenEnvironment.builtIn["prod"]!
        let credentials = try self.builder().credentials
        let claims = GrantBuilder(profile: profile, credentials: credentials).claims(now: Date(timeIntervalSince1970: 1_700_000_000), jti: "j")
        #expect(
            claims
                == GrantClaims(
                    aud: "https://maskinporten.no/", iss: profile.clientID, iat: 1_700_000_000, exp: 1_700_000_120, jti: "j", scope: "a:one b:two c:three"))
    }

    @Test("resource, consumer_org and authorization_details have the exact shapes Maskinporten takes")
    func delegationClaims() async throws {
        let builder = try builder(
            extra: """

                    resource: [https://example.no/api]
                    consumer_org: "991825827"
                    system_user_org: "974760673"
                    system_user_external_ref: my-ref
                """)
        let grant = try builder.makeGrant()
        let payload = try TestKey.decodeBase64url(String(grant.split(separator: ".")[1]))
        let text = String(decoding: payload, as: UTF8.self)
        #expect(text.contains(#""resource":["https://example.no/api"]"#))
        #expect(text.contains(#""consumer_org":"991825827""#))
        #expect(
            text.contains(
                #""authorization_details":[{"externalRef":"my-ref","systemuser_org":{"ID":"0192:974760673","authority":"iso6523-actorid-upis"},"type":"urn:altinn:systemuser"}]"#
            ), "\(text)")
        try await Keys.rsa2048.opensslVerify(jws: grant)
    }

    @Test("a certificate grant carries x5c (leaf first, standard Base64 DER) and no kid; openssl verifies it against the certificate")
    func x5cGrant() async throws {
        let scratch = try TemporaryDirectory()
        try await Command.openssl(
            "req", "-x509", "-key", Keys.rsa2048.pkcs8Path, "-out", scratch.path("cert.pem"), "-days", "5", "-subj", "/CN=Org/serialNumber=991825827")
        try scratch.write("key.pem", Data(contentsOf: URL(fileURLWithPath: Keys.rsa2048.pkcs8Path)), mode: 0o600)
        let builder = try builder(key: "      certificate_file: \(scratch.path("cert.pem"))\n      private_key_file: \(scratch.path("key.pem"))")
        let grant = try builder.makeGrant()
        let parts = grant.split(separator: ".")
        let header = try decode(parts[0])
        #expect(Set(header.keys) == ["alg", "x5c"])
        let x5c = try #require(header["x5c"] as? [String])
        let der = try await Command.openssl("x509", "-in", scratch.path("cert.pem"), "-outform", "DER").stdout
        #expect(x5c == [der.base64EncodedString()])
        // Verify with the public key taken from the certificate by openssl itself.
        let publicKey = try await Command.openssl("x509", "-in", scratch.path("cert.pem"), "-pubkey", "-noout").stdout
        let keyPath = try scratch.write("cert-public.pem", publicKey)
        try scratch.write("input", Data("\(parts[0]).\(parts[1])".utf8))
        try scratch.write("signature", TestKey.decodeBase64url(String(parts[2])))
        let verdict = try await Command.run("openssl", ["dgst", "-sha256", "-verify", keyPath, "-signature", scratch.path("signature"), scratch.path("input")])
        #expect(verdict.status == 0 && verdict.output.contains("Verified OK"))
    }
}
