import BrokerTestSupport
import Foundation
import Logging
import Testing

@testable import BrokerConfig
@testable import BrokerTokens
@testable import MaskinportenEmulator

/// A profile's variants (delegation chosen per request): chosen and checked, cached each on
/// its own, refreshed only while used.
@Suite("Variants: delegation chosen per request", .sharedKeys)
struct VariantTests {
    static let org = try! OrganisationNumber("910000004")

    @Test("the choice is checked against delegation: permitted parameters, valid numbers, the list")
    func choose() throws {
        var profile = try #require(try ConfigFixture().load(ConfigFixture.profile).profiles.first)
        #expect(TokenVariant.choose([:], for: profile) == .success(.base))
        #expect(
            TokenVariant.choose(["system_user_org": "910000004"], for: profile)
                == .failure(
                    .invalid(
                        "profile \"notifications\" does not let callers choose system_user_org (its delegation: section does not list it)")))
        profile.delegation = DelegationSettings(systemUserOrg: .any, consumerOrg: .only([try OrganisationNumber("991825827")]))
        #expect(
            TokenVariant.choose(["system_user_org": "910000004", "system_user_external_ref": "r"], for: profile)
                == .success(TokenVariant(systemUserOrg: Self.org, systemUserExternalRef: "r")))
        guard case .failure(.invalid(let reason)) = TokenVariant.choose(["system_user_org": "910000005"], for: profile) else {
            Issue.record("a bad check digit is refused")
            return
        }
        #expect(reason.hasPrefix("system_user_org: "))
        #expect(
            TokenVariant.choose(["consumer_org": "910000004"], for: profile)
                == .failure(
                    .denied(
                        "profile \"notifications\" does not let callers choose consumer_org 910000004")))
        #expect(TokenVariant.choose(["system_user_external_ref": "r"], for: profile) == .failure(.invalid("system_user_external_ref needs system_user_org")))
        #expect(TokenVariant(systemUserOrg: Self.org, systemUserExternalRef: "r").auditName == "system_user_org=910000004,external_ref=r")
    }

    @Test("delegation: is validated as the rest of the configuration")
    func configuration() throws {
        let fixture = try ConfigFixture()
        let profile = try #require(
            try fixture.load(ConfigFixture.profile + "\n    delegation:\n      system_user_org: any\n      consumer_org: [991825827]\n      max_variants: 5")
                .profiles.first)
        #expect(profile.delegation == DelegationSettings(systemUserOrg: .any, consumerOrg: .only([try OrganisationNumber("991825827")]), maxVariants: 5))
        for (yaml, mentions) in [
            ("\n    delegation:\n      system_user_org: some", "is not a choice: write any, or a list"),
            ("\n    delegation:\n      consumer_org: [991825828]", "check digit"),
            ("\n    delegation:\n      system_user_org: any\n      max_variants: 0", "between 1 and 1000000"),
            ("\n    delegation:\n      max_variants: 3", "lets callers choose nothing"),
            ("\n    system_user_org: 991825827\n    delegation:\n      system_user_org: any", "keep one"),
        ] {
            let error = #expect(throws: ConfigError.self) { try fixture.load(ConfigFixture.profile + yaml) }
            #expect(error?.message.contains(mentions) == true, "\(yaml): \(error?.description ?? "")")
        }
    }

    @Test("a variant used within its token's lifetime is refreshed ahead of expiry; an idle one is not, and is let go when its token runs out (virtual time)")
    func idleVariantIsNotRefreshed() async throws {
        try await EmulatorHarness.with { harness in
            let time = ManualClock()
            let (configuration, credentials) = try harness.configuration(
                exchange: "none", minValid: 0, extra: "\n    delegation:\n      system_user_org: any")
            let broker = try TokenBroker(configuration: configuration, credentials: credentials, clock: time.clock, logger: CapturedLogs().logger)
            try await shuttingDown(broker) {
                try await whileRefreshing(broker) {
                    let used = TokenVariant(systemUserOrg: Self.org)
                    let idle = TokenVariant(systemUserOrg: try OrganisationNumber("910000012"))
                    _ = try await #require(broker.cache(for: "notifications", variant: idle)).token()
                    let first = try await #require(broker.cache(for: "notifications", variant: used)).token()
                    #expect(broker.variantCount(of: "notifications") == 2)
                    // Maskinporten's tokens live 120 s: the idle variant's runs out; the used one is
                    // refreshed before that. Five seconds at a time, the used variant asked for each.
                    var refreshed = false
                    for _ in 0..<30 {
                        let cache = try #require(broker.cache(for: "notifications", variant: used))
                        #expect(await harness.advance(time, by: .seconds(5), settling: cache))
                        if try await cache.token().fingerprint != first.fingerprint { refreshed = true }
                    }
                    #expect(refreshed, "the used variant was refreshed ahead of expiry")
                    #expect(await eventually { broker.variantCount(of: "notifications") == 1 }, "the idle variant was let go once its token ran out")
                    let byOrganisation = harness.emulator.stats.tokensIssuedByOrganisation
                    #expect(byOrganisation["910000012"] == 1, "the idle variant was fetched once, for its request: \(byOrganisation)")
                    #expect((byOrganisation["910000004"] ?? 0) >= 2, "the used variant was refreshed: \(byOrganisation)")
                }
            }
        }
    }
}
