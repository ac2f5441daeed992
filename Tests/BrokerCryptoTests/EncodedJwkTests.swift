import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerCrypto

/// Keys shared by the tests of this module: key generation is the slow part.
enum Keys {
    static let rsa2048: TestKey = SharedKeys.key("rsa2048")
    static let other2048: TestKey = SharedKeys.key("other2048")
    static let rsa1024: TestKey = SharedKeys.key("rsa1024")
    static let ec: TestKey = SharedKeys.key("ec")
}

@Suite("EncodedJwk parsing", .sharedKeys)
struct EncodedJwkTests {
    // MARK: - Every accepted encoding

    /// The encodings people meet: what generators print, what they paste, what survives a
    /// YAML file or an environment variable.
    static let encodings: [(name: String, encode: @Sendable (String) -> String)] = [
        ("standard Base64, padded", { Data($0.utf8).base64EncodedString() }),
        ("standard Base64, unpadded", { Data($0.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "") }),
        ("URL-safe Base64, unpadded", { TestKey.base64url(Array($0.utf8)) }),
        (
            "URL-safe Base64, padded",
            {
                Data($0.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            }
        ),
        ("Base64 wrapped at 64 columns", { Data($0.utf8).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed]) }),
        (
            "Base64 wrapped at 76 columns with CRLF",
            { Data($0.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed]) }
        ),
        ("Base64 with surrounding white space and trailing newline", { "  \n" + Data($0.utf8).base64EncodedString() + "\n\n" }),
        ("plain JSON, not encoded", { $0 }),
    ]

    static let forms: [(name: String, json: @Sendable (TestKey) -> String, kid: String?)] = [
        ("a bare JWK", { $0.jwkJSON(kid: "k1") }, nil),
        ("a JWK Set with one key", { "{\"keys\":[\($0.jwkJSON(kid: "k1"))]}" }, nil),
        ("a JWK Set with two keys, chosen by kid", { "{\"keys\":[\(Keys.other2048.jwkJSON(kid: "k0")),\($0.jwkJSON(kid: "k1"))]}" }, "k1"),
    ]

    @Test("each encoding and form yields the same key", arguments: 0..<encodings.count, 0..<forms.count)
    func acceptsEncoding(encodingIndex: Int, formIndex: Int) async throws {
        let encoding = Self.encodings[encodingIndex]
        let form = Self.forms[formIndex]
        let key = Keys.rsa2048
        let text = encoding.encode(form.json(key))
        let jwk = try JWK.parseEncoded(Array(text.utf8), kid: form.kid)
        #expect(jwk.kid == "k1", "\(encoding.name), \(form.name)")
        let privateKey = try RSAPrivateKey(jwk: jwk)
        #expect(privateKey.bits == 2048)
        // The key parsed is the key openssl made: openssl verifies its signature.
        let message = Array("\(encoding.name) / \(form.name)".utf8)
        let signature = try privateKey.sign(message, algorithm: .rs256)
        try await key.opensslVerify(message: Data(message), signature: Data(signature), digest: "sha256")
    }

    @Test("a 4096-bit key is accepted")
    func accepts4096() async throws {
        // Made here, not shared: a 4096-bit key takes seconds, and only this test needs one.
        let jwk = try JWK.parseEncoded(Array(try await TestKey.generate(bits: 4096).encodedJwk().utf8))
        #expect(try RSAPrivateKey(jwk: jwk).bits == 4096)
    }

    // MARK: - Every bad key, its own error

    struct BadKey: Sendable, CustomTestStringConvertible {
        var name: String
        var text: @Sendable () -> String
        var kid: String? = nil
        var code: BrokerCryptoError.Code
        var mentions: String
        var testDescription: String { name }
    }

    static let badKeys: [BadKey] = [
        BadKey(
            name: "truncated Base64 (cut mid-byte)",
            text: {
                let full = Keys.rsa2048.encodedJwk().replacingOccurrences(of: "=", with: "")
                return String(full.prefix(full.count / 4 * 4 - 3))
            }, code: .truncated, mentions: "truncated"),
        BadKey(
            name: "truncated Base64 (cut on a byte boundary)",
            text: {
                String(Keys.rsa2048.encodedJwk().prefix(400))
            }, code: .truncated, mentions: "truncated"),
        BadKey(name: "not Base64 at all", text: { "this is not a key!" }, code: .invalidBase64, mentions: "not valid Base64"),
        BadKey(
            name: "Base64 of something that is not JSON",
            text: {
                Data("<key>not a key</key>".utf8).base64EncodedString()
            }, code: .notJSON, mentions: "not JSON"),
        BadKey(
            name: "Base64 of broken JSON",
            text: {
                Data("{\"kty\": RSA}".utf8).base64EncodedString()
            }, code: .notJSON, mentions: "not valid JSON"),
        BadKey(
            name: "an EC key",
            text: {
                Data(Keys.ec.jwkJSON().utf8).base64EncodedString()
            }, code: .unsupportedKeyType, mentions: "EC (P-256) key"),
        BadKey(
            name: "a public-only key",
            text: {
                Data(Keys.rsa2048.jwkJSON(dropping: ["d", "p", "q", "dp", "dq", "qi"]).utf8).base64EncodedString()
            }, code: .publicOnlyKey, mentions: "public key"),
        BadKey(
            name: "a key without its CRT parts",
            text: {
                Data(Keys.rsa2048.jwkJSON(dropping: ["dp", "dq"]).utf8).base64EncodedString()
            }, code: .missingKeyPart, mentions: "dp, dq"),
        BadKey(name: "a 1024-bit key", text: { Keys.rsa1024.encodedJwk() }, code: .keyTooSmall, mentions: "1024 bits"),
        BadKey(
            name: "inconsistent parts (q of another key)",
            text: {
                let q = Keys.other2048.jwkMembers()["q"]!
                return Data(Keys.rsa2048.jwkJSON(replacing: ["q": q]).utf8).base64EncodedString()
            }, code: .inconsistentKeyParts, mentions: "p·q does not equal n"),
        BadKey(
            name: "inconsistent parts (d of another key)",
            text: {
                let d = Keys.other2048.jwkMembers()["d"]!
                return Data(Keys.rsa2048.jwkJSON(replacing: ["d": d]).utf8).base64EncodedString()
            }, code: .inconsistentKeyParts, mentions: "e·d is not 1"),
        BadKey(
            name: "inconsistent parts (wrong qi)",
            text: {
                let qi = Keys.other2048.jwkMembers()["qi"]!
                return Data(Keys.rsa2048.jwkJSON(replacing: ["qi": qi]).utf8).base64EncodedString()
            }, code: .inconsistentKeyParts, mentions: "qi·q"),
        BadKey(
            name: "a JWK Set of two keys with no kid chosen",
            text: {
                Data("{\"keys\":[\(Keys.rsa2048.jwkJSON(kid: "a")),\(Keys.other2048.jwkJSON(kid: "b"))]}".utf8).base64EncodedString()
            }, code: .ambiguousKeySet, mentions: "kids: a, b"),
        BadKey(
            name: "a JWK Set without the kid asked for",
            text: {
                Data("{\"keys\":[\(Keys.rsa2048.jwkJSON(kid: "a"))]}".utf8).base64EncodedString()
            }, kid: "zzz", code: .keyNotFound, mentions: "no key with kid \"zzz\""),
        BadKey(name: "an empty JWK Set", text: { Data("{\"keys\":[]}".utf8).base64EncodedString() }, code: .keyNotFound, mentions: "no keys"),
        BadKey(
            name: "a member of the wrong type",
            text: {
                Data("{\"kty\":\"RSA\",\"n\":12}".utf8).base64EncodedString()
            }, code: .invalidJWK, mentions: "\"n\""),
        BadKey(
            name: "a member that is not base64url",
            text: {
                Data(Keys.rsa2048.jwkJSON(replacing: ["p": "*** not base64 ***"]).utf8).base64EncodedString()
            }, code: .invalidJWK, mentions: "\"p\""),
        BadKey(
            name: "no kty",
            text: {
                Data(Keys.rsa2048.jwkJSON(dropping: ["kty"]).utf8).base64EncodedString()
            }, code: .invalidJWK, mentions: "kty"),
    ]

    @Test("each bad key gets its own clear error", arguments: badKeys)
    func refusesBadKey(_ bad: BadKey) throws {
        let error = #expect(throws: BrokerCryptoError.self) {
            let jwk = try JWK.parseEncoded(Array(bad.text().utf8), kid: bad.kid)
            _ = try RSAPrivateKey(jwk: jwk)
        }
        #expect(error?.code == bad.code, "\(bad.name): \(error?.reason ?? "")")
        #expect(error?.reason.contains(bad.mentions) == true, "\(bad.name): \(error?.reason ?? "")")
        // No error repeats key material: not the modulus, not a private part.
        for (member, bytes) in Keys.rsa2048.parts {
            let fragment = String(TestKey.base64url(bytes).prefix(24))
            #expect(error?.reason.contains(fragment) != true, "\(bad.name) leaks \(member)")
        }
    }
}
