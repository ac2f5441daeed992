import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerCrypto

@Suite("Signing, checked by openssl", .sharedKeys)
struct SigningTests {
    @Test("every algorithm's signature verifies with openssl dgst -verify", arguments: SigningAlgorithm.allCases)
    func opensslVerifiesSignature(_ algorithm: SigningAlgorithm) async throws {
        let key = try RSAPrivateKey(jwk: JWK.parseEncoded(Array(Keys.rsa2048.encodedJwk().utf8)))
        let message = Array("grant input for \(algorithm)".utf8)
        let signature = try key.sign(message, algorithm: algorithm)
        #expect(signature.count == 256)
        let verdict = try await Keys.rsa2048.opensslVerify(message: Data(message), signature: Data(signature), digest: "sha\(algorithm.rawValue.dropFirst(2))")
        #expect(verdict == "Verified OK")
        // And our own verifier agrees, and refuses a tampered message.
        let publicKey = try key.publicKey
        #expect(publicKey.verify(signature, for: message, algorithm: algorithm))
        #expect(!publicKey.verify(signature, for: message + [0], algorithm: algorithm))
    }

    @Test("openssl refuses a signature made with another key")
    func opensslRefusesWrongKey() async throws {
        let key = try RSAPrivateKey(jwk: JWK.parseEncoded(Array(Keys.other2048.encodedJwk().utf8)))
        let message = Array("x".utf8)
        let signature = try key.sign(message, algorithm: .rs256)
        await #expect(throws: TestSupportError.self) {
            try await Keys.rsa2048.opensslVerify(message: Data(message), signature: Data(signature), digest: "sha256")
        }
    }

    @Test("a compact JWS verifies with openssl", arguments: SigningAlgorithm.allCases)
    func jwsVerifies(_ algorithm: SigningAlgorithm) async throws {
        struct Header: Encodable {
            var alg: String
            var kid: String
        }
        struct Claims: Encodable {
            var aud: String
            var n: Int
        }
        let key = try RSAPrivateKey(jwk: JWK.parseEncoded(Array(Keys.rsa2048.encodedJwk().utf8)))
        let jws = try JWS.sign(
            header: Header(alg: algorithm.rawValue, kid: "k"), payload: Claims(aud: "https://test.maskinporten.no/", n: 1), key: key, algorithm: algorithm)
        #expect(try await Keys.rsa2048.opensslVerify(jws: jws) == "Verified OK")
        let parts = try JWS.split(jws)
        #expect(String(decoding: parts.payload, as: UTF8.self) == #"{"aud":"https://test.maskinporten.no/","n":1}"#)
        #expect(!jws.contains("="), "base64url without padding")
    }

    // MARK: - PEM private keys

    @Test("PKCS#8 and PKCS#1 PEM keys load and sign like the JWK", arguments: ["pkcs8", "pkcs1"])
    func pemKeys(_ form: String) async throws {
        let path = form == "pkcs8" ? Keys.rsa2048.pkcs8Path : Keys.rsa2048.pkcs1Path!
        let pem = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(String(decoding: pem, as: UTF8.self).contains(form == "pkcs8" ? "BEGIN PRIVATE KEY" : "BEGIN RSA PRIVATE KEY"))
        let key = try RSAPrivateKey(pem: pem)
        #expect(key.bits == 2048)
        let message = Array("pem".utf8)
        try await Keys.rsa2048.opensslVerify(message: Data(message), signature: Data(key.sign(message, algorithm: .rs512)), digest: "sha512")
    }

    @Test("PEM keys that cannot be used get their own errors")
    func badPEMKeys() async throws {
        let scratch = try TemporaryDirectory()
        let encrypted = scratch.path("enc.pem")
        try await Command.openssl("pkey", "-in", Keys.rsa2048.pkcs8Path, "-aes256", "-passout", "pass:secret", "-out", encrypted)
        let cases: [(String, [UInt8], BrokerCryptoError.Code)] = [
            ("encrypted", try Array(Data(contentsOf: URL(fileURLWithPath: encrypted))), .encryptedKey),
            ("EC", try Array(Data(contentsOf: URL(fileURLWithPath: Keys.ec.pkcs8Path))), .unsupportedKeyType),
            ("1024 bits", try Array(Data(contentsOf: URL(fileURLWithPath: Keys.rsa1024.pkcs8Path))), .keyTooSmall),
            ("public key only", try Array(Data(contentsOf: URL(fileURLWithPath: Keys.rsa2048.publicPath))), .invalidPEM),
            ("garbage inside the armour", Array("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".utf8), .invalidPEM),
        ]
        for (name, pem, code) in cases {
            let error = #expect(throws: BrokerCryptoError.self, "\(name)") { try RSAPrivateKey(pem: pem) }
            #expect(error?.code == code, "\(name): \(error?.reason ?? "")")
        }
    }

    // MARK: - Certificates

    @Test("a certificate chain reads leaf first, matches its key, and has a thumbprint")
    func certificateChain() async throws {
        let scratch = try TemporaryDirectory()
        let caKey = scratch.path("ca.key")
        let caCert = scratch.path("ca.pem")
        try await Command.openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", caKey, "-out", caCert, "-days", "30", "-subj", "/CN=Test CA/O=Broker Tests")
        let csr = scratch.path("leaf.csr")
        let leafCert = scratch.path("leaf.pem")
        try await Command.openssl("req", "-new", "-key", Keys.rsa2048.pkcs8Path, "-out", csr, "-subj", "/CN=Leaf/O=Org/serialNumber=991825827")
        try await Command.openssl("x509", "-req", "-in", csr, "-CA", caCert, "-CAkey", caKey, "-CAcreateserial", "-out", leafCert, "-days", "10")
        let pem = try Data(contentsOf: URL(fileURLWithPath: leafCert)) + Data(contentsOf: URL(fileURLWithPath: caCert))
        let chain = try Certificate.chain(pem: Array(pem))
        #expect(chain.count == 2)
        #expect(chain[0].subject.contains("CN=Leaf"))
        #expect(chain[0].subjectSerialNumber == "991825827")
        #expect(chain[0].issuer.contains("CN=Test CA"))
        #expect(chain[0].isIssued(by: chain[1]))
        #expect(!chain[1].isIssued(by: chain[0]))
        #expect(chain[0].notAfter > Date())
        #expect(chain[0].notAfter < Date().addingTimeInterval(11 * 86_400))
        let key = try RSAPrivateKey(pem: Array(Data(contentsOf: URL(fileURLWithPath: Keys.rsa2048.pkcs8Path))))
        #expect(try chain[0].publicKey.matches(key))
        #expect(try !chain[1].publicKey.matches(key))
        // DER and thumbprint agree with openssl's own.
        let der = try await Command.openssl("x509", "-in", leafCert, "-outform", "DER").stdout
        #expect(chain[0].der == Array(der))
        let fingerprint = try await Command.openssl("x509", "-in", leafCert, "-noout", "-fingerprint", "-sha1").output
        let hex = chain[0].sha1Thumbprint.map { String(format: "%02X", $0) }.joined(separator: ":")
        #expect(fingerprint.contains(hex))
    }

    @Test("text without a certificate is refused")
    func noCertificate() throws {
        let error = #expect(throws: BrokerCryptoError.self) { try Certificate.chain(pem: Array("hello".utf8)) }
        #expect(error?.code == .invalidPEM)
    }
}

@Suite("Base64", .sharedKeys)
struct Base64Tests {
    @Test("base64url round-trips every length", arguments: 0..<40)
    func roundTrip(_ length: Int) throws {
        let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
        let url = Base64.urlEncoded(bytes)
        #expect(!url.contains("=") && !url.contains("+") && !url.contains("/"))
        #expect(try Base64.decode(url.utf8) == bytes)
        let standard = Base64.standardEncoded(bytes)
        #expect(standard == Data(bytes).base64EncodedString())
        #expect(try Base64.decode(standard.utf8) == bytes)
    }
}
