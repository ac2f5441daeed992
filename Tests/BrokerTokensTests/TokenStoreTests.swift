import BrokerTestSupport
import Foundation
import Logging
import Testing

@testable import BrokerConfig
@testable import BrokerCrypto
@testable import BrokerTokens
@testable import MaskinportenEmulator

/// The tokens kept through a restart: the store file's format, and what a new broker does with
/// what it is handed.
@Suite("Tokens through restarts: the store file and restoring from it", .sharedKeys)
struct TokenStoreTests {
    static func token(_ profile: String = "notifications", variant: TokenVariant = .base, expiresIn: Double = 1800) -> StoredToken {
        let now = Date()
        return StoredToken(
            profile: profile, variant: variant, identity: [UInt8](repeating: 7, count: 32), kind: .altinn, scope: "altinn:serviceowner/notifications.create",
            value: "eyJ.token.\(profile)", expiresAtMilliseconds: Int64((now.timeIntervalSince1970 + expiresIn) * 1000),
            obtainedAtMilliseconds: Int64((now.timeIntervalSince1970 - 60) * 1000))
    }

    @Test("the file reads back what was written, variants included")
    func roundTrip() throws {
        let variant = TokenVariant(systemUserOrg: try OrganisationNumber("991825827"), systemUserExternalRef: "ref-1")
        let tokens = [Self.token(), Self.token("second", variant: variant), Self.token("æøå")]
        let bytes = TokenStoreFile.encode(tokens)
        #expect(try TokenStoreFile.decode(bytes).get() == tokens)
        #expect(try TokenStoreFile.decode(TokenStoreFile.encode([])).get().isEmpty)
    }

    @Test("a wrong version, a bad checksum, a truncated file, garbage: refused, each with its reason")
    func refused() throws {
        let bytes = TokenStoreFile.encode([Self.token()])
        func reason(_ bytes: [UInt8]) -> String {
            if case .failure(let refusal) = TokenStoreFile.decode(bytes) { return refusal.reason }
            return "read"
        }
        var version = bytes
        version[9] = 2
        #expect(reason(version).contains("version 2, not 1"))
        var flipped = bytes
        flipped[40] ^= 0xFF
        #expect(reason(flipped).contains("checksum does not match"))
        #expect(reason(Array(bytes.dropLast(10))).contains("checksum does not match"))
        #expect(reason(Array(repeating: 0x41, count: 100)).contains("does not start as a store file"))
        #expect(reason([]).contains("shorter than any store file"))
        // A well-formed checksum over a body that claims more entries than it has.
        var body = Array(bytes.dropLast(32))
        body[10] = 2
        #expect(reason(body + Digest.sha256(body)).contains("truncated"))
    }

    @Test(
        "a new broker holds the kept token at once, without a call upstream, and says so; a changed identity, an expired token and a gone profile are discarded with their reasons"
    )
    func restore() async throws {
        try await EmulatorHarness.with { harness in
            let (first, cache) = try harness.broker()
            let fetched = try await shuttingDown(first) { try await cache.token() }
            let kept = try TokenStoreFile.decode(TokenStoreFile.encode(first.storedTokens())).get()
            #expect(kept.map(\.value) == [fetched.value])
            let issued = harness.emulator.stats.tokensIssued

            var expired = kept[0]
            expired.expiresAtMilliseconds = Int64((Date().timeIntervalSince1970 + 5) * 1000)
            var gone = kept[0]
            gone.profile = "gone"
            let (configuration, credentials) = try harness.configuration()
            let second = try TokenBroker(configuration: configuration, credentials: credentials, restoring: kept + [gone], logger: .init(label: "test"))
            try await shuttingDown(second) {
                let restored = try #require(second.cache(for: "notifications"))
                #expect(restored.heldToken()?.value == fetched.value)
                #expect(await restored.status().restored)
                #expect(await restored.status().state == .ready)
                #expect(await second.firstFetchesEnded(within: .milliseconds(50)), "nothing to wait for: READY at once")
                #expect(second.restoration.restored == [.init(profile: "notifications", variant: nil, reason: nil)])
                #expect(second.restoration.discarded == [.init(profile: "gone", variant: nil, reason: .profileGone)])
            }

            // The client id changed: that profile would fetch another token.
            var changed = configuration
            changed.profiles[0].clientID = "another-client"
            let third = try TokenBroker(configuration: changed, credentials: credentials, restoring: kept, logger: .init(label: "test"))
            try await shuttingDown(third) {
                #expect(third.cache(for: "notifications")?.heldToken() == nil)
                #expect(third.restoration.restored.isEmpty)
                #expect(third.restoration.discarded == [.init(profile: "notifications", variant: nil, reason: .identityChanged)])
            }
            // Less than min_valid_seconds (10 s) left: not worth holding.
            let fourth = try TokenBroker(configuration: configuration, credentials: credentials, restoring: [expired], logger: .init(label: "test"))
            try await shuttingDown(fourth) {
                #expect(fourth.restoration.discarded == [.init(profile: "notifications", variant: nil, reason: .expired)])
                #expect(fourth.cache(for: "notifications")?.heldToken() == nil)
            }
            // A variant's token goes back into a cache of that variant.
            var delegating = configuration
            delegating.profiles[0].delegation = DelegationSettings(consumerOrg: .any)
            let variant = TokenVariant(consumerOrg: try OrganisationNumber("991825827"))
            var ofVariant = kept[0]
            ofVariant.variant = variant
            ofVariant.identity = TokenStoreIdentity.digest(variant.applied(to: delegating.profiles[0]))
            let fifth = try TokenBroker(configuration: delegating, credentials: credentials, restoring: [ofVariant], logger: .init(label: "test"))
            try await shuttingDown(fifth) {
                #expect(fifth.variantCount(of: "notifications") == 1)
                #expect(fifth.cache(for: "notifications", variant: variant)?.heldToken()?.value == fetched.value)
                #expect(fifth.restoration.restored == [.init(profile: "notifications", variant: variant.auditName, reason: nil)])
            }
            #expect(harness.emulator.stats.tokensIssued == issued, "no token was fetched by the brokers that restored")
        }
    }
}
