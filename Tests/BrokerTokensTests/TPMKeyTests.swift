import BrokerTestSupport
import Foundation
import Logging
import Testing

@testable import BrokerConfig
@testable import BrokerCrypto
@testable import BrokerTokens
@testable import MaskinportenEmulator

/// A profile whose key is in a TPM (swtpm, OpenSSL's tpm2 provider): configured by provider and
/// URI, loaded by the key loader `serve` and `check-config` share, named by its RFC 7638
/// thumbprint, and good for a token from the emulator, which checks the grant's signature.
@Suite("A profile's key in a TPM", .sharedKeys)
struct TPMKeyTests {
    @Test("key: { provider: tpm2, uri: file:..., tcti } loads, is named by its thumbprint, says where it lives, and gets a token")
    func tokenWithATPMKey() async throws {
        try await SoftwareTPM.sharedAlone { tpm in try await Self.tokenWithATPMKey(tpm) }
    }

    static func tokenWithATPMKey(_ tpm: SoftwareTPM) async throws {
        let made = try RSAPrivateKey.generate(provider: "tpm2", tcti: tpm.tcti)
        let thumbprint = try #require(try made.publicKey.jwk().thumbprint)
        try await EmulatorHarness.with { harness in
            harness.emulator.register(
                RegisteredClient(clientID: "tpm-client", scopes: [EmulatorHarness.scope], keys: [try made.publicKey.jwk(kid: thumbprint)]))
            let keyFile = try harness.fixture.directory.write("notifications.tss2.pem", try made.providerPEM(), mode: 0o600)
            let path = try harness.fixture.write(
                """
                environments:
                  local:
                    maskinporten_issuer: \(harness.emulator.issuer)
                    altinn_platform: \(harness.emulator.altinnPlatform)
                profiles:
                  notifications:
                    environment: local
                    client_id: tpm-client
                    scopes: [\(EmulatorHarness.scope)]
                    key: { provider: tpm2, uri: "file:notifications.tss2.pem", tcti: "\(tpm.tcti)" }
                """)
            let configuration = try ConfigLoader.load(path: path)
            let profile = try #require(configuration.profiles.first)
            #expect(
                profile.keySource == .provider(name: "tpm2", uri: "file:\(keyFile)", tcti: tpm.tcti), "a relative file: URI is the configuration's directory's")
            #expect(profile.keySource.summary == "in the TPM (tpm2 provider, file:\(keyFile), \(tpm.tcti))")
            let credentials = try KeyLoader(environment: [:]).load(profile, file: path)
            #expect(credentials.kid == thumbprint && credentials.privateKey.provider == "tpm2")

            let broker = try TokenBroker(
                configuration: configuration, credentials: ["notifications": credentials],
                logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
            let token = try await shuttingDown(broker) { try await broker.cache(for: "notifications")!.token() }
            #expect(token.kind == .altinn)
            #expect(harness.emulator.stats.tokensIssuedByKid[thumbprint] == 1, "the grant was signed in the TPM and checked by the emulator")
        }
    }

    @Test("keys: [a JWK file, a key in the TPM]: the TPM key, not yet registered, waits while the file key signs; once registered, the next probe promotes it")
    func promotionToATPMKey() async throws {
        try await SoftwareTPM.sharedAlone { tpm in try await Self.promotionToATPMKey(tpm) }
    }

    static func promotionToATPMKey(_ tpm: SoftwareTPM) async throws {
        let made = try RSAPrivateKey.generate(provider: "tpm2", tcti: tpm.tcti)
        try await EmulatorHarness.with { harness in
            try harness.fixture.directory.write("new.tss2.pem", try made.providerPEM(), mode: 0o600)
            let keys = """
                    keys:
                      - encoded_jwk_file: notifications.jwk
                      - { provider: tpm2, uri: "file:new.tss2.pem", tcti: "\(tpm.tcti)", kid: tpm-kid }
                """
            var (configuration, credentials) = try harness.configuration(
                extra: "", replacingKey: keys)
            #expect(credentials["notifications"]?.keys.map(\.kid) == ["test-kid", "tpm-kid"])
            configuration.refresh.keyProbeSeconds = 1
            let logs = CapturedLogs()
            let broker = try TokenBroker(configuration: configuration, credentials: credentials, policy: RetryPolicy().scaled(by: 0.1), logger: logs.logger)
            try await shuttingDown(broker) {
                let cache = try #require(broker.cache(for: "notifications"))
                let first = try await cache.token()
                #expect(harness.emulator.stats.tokensIssuedByKid == ["test-kid": 1], "the file key signs while the TPM key is unknown")
                #expect(harness.emulator.stats.grantsRefused == 1, "the TPM key was tried first, and refused")
                let before = await cache.status().keys
                #expect(before.map(\.location) == ["memory", "tpm"] && before.map(\.signs) == [true, false])

                harness.emulator.register(
                    RegisteredClient(
                        clientID: "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17", scopes: [EmulatorHarness.scope],
                        keys: [
                            try JWK.parseEncoded(Array(Keys.rsa2048.jwkJSON(kid: "test-kid").utf8)).publicPart, try made.publicKey.jwk(kid: "tpm-kid"),
                        ]))
                try await whileRefreshing(broker) {
                    try await KeyPromotionTests.waitForPromotion(to: "tpm-kid", logs: logs, cache: cache, replacing: first)
                    #expect(harness.emulator.stats.tokensIssuedByKid["tpm-kid"] == 1, "\(harness.emulator.stats)")
                    let after = await cache.status().keys
                    #expect(after.map(\.signs) == [false, true] && after.map(\.verdict) == [.untried, .accepted])
                }
            }
        }
    }
}
