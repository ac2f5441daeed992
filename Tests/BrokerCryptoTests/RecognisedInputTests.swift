import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerCrypto

/// The inputs most often given where an EncodedJwk belongs, each named as what it is, with
/// what to do instead: a PEM file (the key, a certificate, the public key) and the public key
/// array Samarbeidsportalen shows, raw or Base64-encoded as a user might have "fixed" it.
@Suite("EncodedJwk: recognised wrong inputs", .sharedKeys)
struct RecognisedInputTests {
    static let privatePEM =
        "this is a PEM file (-----BEGIN PRIVATE KEY-----), not an EncodedJwk. A PEM private key belongs in key.private_key_file, with its business certificate in key.certificate_file; a key registered in Samarbeidsportalen by kid is given as an EncodedJwk (Base64 of the private JWK), which `maskinporten-broker keygen --from THIS_FILE --out FILE` makes of this key"
    static let publicArray =
        "this is a JSON array of public keys, as Samarbeidsportalen shows them: the public part, which Maskinporten holds. The broker signs with the private part: give the EncodedJwk that was made with it (Base64 of the private JWK, with \"d\"), or make a new pair with `maskinporten-broker keygen --out FILE` and register its public part"

    static func reason(_ text: String) -> (BrokerCryptoError.Code, String)? {
        do {
            _ = try JWK.parseEncoded(Array(text.utf8))
            return nil
        } catch let error as BrokerCryptoError {
            return (error.code, error.reason)
        } catch {
            return nil
        }
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func file(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    @Test("a PKCS#8 PEM private key, raw or Base64-encoded, names private_key_file and keygen")
    func pkcs8() throws {
        let pem = try Self.file(Keys.rsa2048.pkcs8Path)
        for text in [pem, Self.base64(pem)] {
            let (code, reason) = try #require(Self.reason(text))
            #expect(code == .pemInsteadOfJWK)
            #expect(reason == Self.privatePEM)
        }
    }

    @Test("a PKCS#1 PEM private key is named with its own label")
    func pkcs1() throws {
        let pem = try Self.file(try #require(Keys.rsa2048.pkcs1Path))
        let (code, reason) = try #require(Self.reason(pem))
        #expect(code == .pemInsteadOfJWK)
        #expect(reason == Self.privatePEM.replacingOccurrences(of: "BEGIN PRIVATE KEY", with: "BEGIN RSA PRIVATE KEY"))
    }

    @Test("a PEM certificate names certificate_file")
    func certificate() async throws {
        let scratch = try TemporaryDirectory(prefix: "recognise")
        try await Command.openssl("req", "-x509", "-key", Keys.rsa2048.pkcs8Path, "-out", scratch.path("cert.pem"), "-days", "1", "-subj", "/CN=Test")
        let (code, reason) = try #require(Self.reason(try Self.file(scratch.path("cert.pem"))))
        #expect(code == .pemInsteadOfJWK)
        #expect(
            reason
                == "this is a PEM file (-----BEGIN CERTIFICATE-----), not an EncodedJwk. A business certificate belongs in key.certificate_file, with its private key in key.private_key_file"
        )
    }

    @Test("a PEM public key is the public part")
    func publicPEM() throws {
        let (code, reason) = try #require(Self.reason(try Self.file(Keys.rsa2048.publicPath)))
        #expect(code == .publicOnlyKey)
        #expect(
            reason
                == "this is a PEM file (-----BEGIN PUBLIC KEY-----), not an EncodedJwk, and a public key: the part Maskinporten holds. The broker signs with the private part: give the EncodedJwk of the private key, or make a new pair with `maskinporten-broker keygen --out FILE`"
        )
    }

    @Test("the public key array from Samarbeidsportalen, raw or Base64-encoded, is the public part")
    func portalArray() throws {
        var members = Keys.rsa2048.jwkMembers(kid: "portal-kid", alg: "RS256")
        for member in ["d", "p", "q", "dp", "dq", "qi"] { members.removeValue(forKey: member) }
        let array = "[\(TestKey.json(members))]"
        for text in [array, "\n" + array + "\n", Self.base64(array)] {
            let (code, reason) = try #require(Self.reason(text))
            #expect(code == .publicOnlyKey)
            #expect(reason == Self.publicArray)
        }
    }

    @Test("a single public JWK is the public part too")
    func publicJWK() throws {
        let text = Keys.rsa2048.jwkJSON(kid: "k", dropping: ["d", "p", "q", "dp", "dq", "qi"])
        #expect(throws: BrokerCryptoError(.publicOnlyKey, "")) { try RSAPrivateKey(jwk: try JWK.parseEncoded(Array(Self.base64(text).utf8))) }
    }

    @Test("an array of private keys is read as the JWK Set it means")
    func privateArray() throws {
        let jwk = try JWK.parseEncoded(Array(Self.base64("[\(Keys.rsa2048.jwkJSON(kid: "only"))]").utf8))
        #expect(jwk.kid == "only")
        #expect(try RSAPrivateKey(jwk: jwk).bits == 2048)
    }
}
