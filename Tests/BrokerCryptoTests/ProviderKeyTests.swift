import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerCrypto

/// Keys held by a TPM through OpenSSL's `tpm2` provider, against swtpm: made inside the TPM,
/// written only as a TPM-wrapped file, loaded back by URI, and signing through EVP as file keys
/// do, checked by `openssl` with the public half alone.
@Suite("Keys in a TPM 2.0 (swtpm, the tpm2 provider)")
struct ProviderKeyTests {
    @Test("a key made in the TPM: its file is TSS2-wrapped (no private part in it), it loads back by file: URI, and its signatures verify with openssl")
    func madeInTheTPM() async throws {
        try await SoftwareTPM.sharedAlone { tpm in try await Self.madeInTheTPM(tpm) }
    }

    static func madeInTheTPM(_ tpm: SoftwareTPM) async throws {
        let made = try RSAPrivateKey.generate(provider: "tpm2", tcti: tpm.tcti)
        #expect(made.provider == "tpm2" && made.bits == 2048)
        let pem = try made.providerPEM()
        #expect(pem.hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"), "\(pem.prefix(40))")
        #expect(!pem.contains("BEGIN PRIVATE KEY") && !pem.contains("BEGIN RSA PRIVATE KEY"))
        #expect(throws: BrokerCryptoError.self, "a TPM's key cannot be exported") { _ = try made.privateJWK(kid: nil) }

        let scratch = try TemporaryDirectory(prefix: "tpm-key")
        let file = try scratch.write("key.tss2.pem", Data(pem.utf8))
        let loaded = try RSAPrivateKey(uri: "file:\(file)", provider: "tpm2", tcti: tpm.tcti)
        let publicKey = try loaded.publicKey
        #expect(try made.publicKey.jwk().n == publicKey.jwk().n, "the same key, loaded back")
        let publicPath = try scratch.write("public.pem", Data(try publicKey.pem().utf8))
        for algorithm in SigningAlgorithm.allCases {
            let message = Array("grant input for \(algorithm)".utf8)
            let signature = try loaded.sign(message, algorithm: algorithm)
            let messagePath = try scratch.write("message", Data(message))
            let signaturePath = try scratch.write("signature", Data(signature))
            let verdict = try await Command.run(
                "openssl", ["dgst", "-sha\(algorithm.rawValue.dropFirst(2))", "-verify", publicPath, "-signature", signaturePath, messagePath])
            #expect(verdict.output.contains("Verified OK"), "\(algorithm): \(verdict.output) \(verdict.errorOutput)")
        }
    }

    @Test("errors name their fix: an empty handle, a file that is no key, a provider that is not installed")
    func errors() async throws {
        try await SoftwareTPM.sharedAlone { tpm in try Self.errors(tpm) }
    }

    static func errors(_ tpm: SoftwareTPM) throws {
        do {
            _ = try RSAPrivateKey(uri: "handle:0x81000009", provider: "tpm2", tcti: tpm.tcti)
            Issue.record("an empty handle loaded")
        } catch let error as BrokerCryptoError {
            #expect(error.reason.contains("the TPM has no key at 0x81000009") && error.reason.contains("tpm2_getcap handles-persistent"), "\(error.reason)")
        }
        let scratch = try TemporaryDirectory(prefix: "tpm-bad")
        let garbage = try scratch.write("garbage.pem", Data("-----BEGIN TSS2 PRIVATE KEY-----\nAAAA\n-----END TSS2 PRIVATE KEY-----\n".utf8))
        #expect(throws: BrokerCryptoError.self) { _ = try RSAPrivateKey(uri: "file:\(garbage)", provider: "tpm2", tcti: tpm.tcti) }
        do {
            _ = try RSAPrivateKey(uri: "pkcs11:token=none", provider: "no-such-provider")
            Issue.record("a provider that does not exist loaded")
        } catch let error as BrokerCryptoError {
            #expect(error.code == .providerUnavailable && error.reason.contains("no-such-provider.so is missing"), "\(error.reason)")
        }
    }
}
