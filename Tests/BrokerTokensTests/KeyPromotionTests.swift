import BrokerTestSupport
import Foundation
import Logging
import Testing

@testable import BrokerConfig
@testable import BrokerCrypto
@testable import BrokerTokens
@testable import BrokerUpstream
@testable import MaskinportenEmulator

/// A JWK Set without `kid:`: the newest key signs once Maskinporten accepts it; until then the
/// older one does, and clients never see the refusals.
@Suite("Key sets: promotion of the newest accepted key", .sharedKeys)
struct KeyPromotionTests {
    static func key(_ test: TestKey, _ kid: String) throws -> SigningKey {
        let jwk = try JWK.parseEncoded(Array(test.jwkJSON(kid: kid).utf8))
        return SigningKey(privateKey: try RSAPrivateKey(jwk: jwk), kid: kid, algorithm: .rs256)
    }

    @Test("the order of attempts: newest first, refused keys wait out the probe interval, never below the accepted key")
    func attemptOrder() throws {
        let keys = [try Self.key(Keys.rsa2048, "a"), try Self.key(Keys.other2048, "b"), try Self.key(Keys.rsa2048, "c")]
        let logs = CapturedLogs()
        let time = ManualClock()
        let chooser = KeyChooser(keys: keys, probeInterval: .seconds(300), clock: time.clock, logger: logs.logger)
        let start = time.now
        #expect(chooser.attempts().map(\.kid) == ["c", "b", "a"], "nothing known: newest first, down to the oldest")
        #expect(chooser.nextProbe() == nil)
        chooser.refused(keys[2], because: TokenError(.rejected, endpoint: .maskinporten, "MP-100"), fallingBack: true)
        chooser.accepted(keys[1])
        time.advance(by: .seconds(1))
        #expect(chooser.attempts().map(\.kid) == ["b"], "c refused a moment ago; a is older than the accepted b")
        #expect(chooser.nextProbe() == start + .seconds(300))
        time.advance(by: .seconds(298))
        #expect(chooser.attempts().map(\.kid) == ["b"], "a second before the probe")
        time.advance(by: .seconds(2))
        #expect(chooser.attempts().map(\.kid) == ["c", "b"], "c is tried again after the probe interval")
        chooser.accepted(keys[2])
        time.advance(by: .seconds(1))
        #expect(chooser.attempts().map(\.kid) == ["c"])
        #expect(chooser.nextProbe() == nil, "the newest key signs: nothing to probe")
        // Every switch is logged with its reason; the refusal once as a warning.
        let notices = logs.lines.filter { $0.hasPrefix("notice signing with key") }
        #expect(notices.count == 2, "\(logs.lines)")
        #expect(notices.last?.contains("it is the newest key") == true)
        #expect(logs.lines.filter { $0.hasPrefix("warning Maskinporten refused key c") }.count == 1, "\(logs.lines)")

        let single = KeyChooser(keys: [keys[0]], probeInterval: .seconds(1), logger: logs.logger)
        #expect(single.attempts().map(\.kid) == ["a"])
        #expect(single.nextProbe() == nil)
        // A profile's only key always signs; what Maskinporten said of it is what it said last.
        #expect(single.snapshot().map(\.verdict) == [.untried] && single.snapshot().map(\.signs) == [true])
        single.accepted(keys[0])
        #expect(single.snapshot().map(\.verdict) == [.accepted])
        let before = logs.lines.count
        single.refused(keys[0], because: TokenError(.rejected, endpoint: .maskinporten, "MP-100"), fallingBack: false)
        #expect(single.snapshot().map(\.verdict) == [.refused] && single.snapshot().map(\.signs) == [true])
        #expect(logs.lines.count == before, "the fetch's failure is the cache's to report, not a switch")
    }

    @Test("a new key not yet registered: tokens keep coming from the old key; once registered, the next probe promotes it")
    func promotion() async throws {
        try await EmulatorHarness.with { harness in
            // The harness registers Keys.rsa2048 as test-kid; the set adds a newer, unregistered key.
            let set = "{\"keys\":[\(Keys.rsa2048.jwkJSON(kid: "test-kid")),\(Keys.other2048.jwkJSON(kid: "new-kid"))]}"
            try harness.fixture.directory.write("notifications.jwk", Data(set.utf8).base64EncodedString(), mode: 0o600)
            var (configuration, credentials) = try harness.configuration()
            #expect(credentials["notifications"]?.keys.map(\.kid) == ["test-kid", "new-kid"])
            configuration.refresh.keyProbeSeconds = 1
            let logs = CapturedLogs()
            let broker = try TokenBroker(configuration: configuration, credentials: credentials, policy: RetryPolicy().scaled(by: 0.1), logger: logs.logger)
            try await shuttingDown(broker) {
                let cache = try #require(broker.cache(for: "notifications"))

                let first = try await cache.token()
                #expect(first.remaining() > .seconds(60))
                #expect(harness.emulator.stats.tokensIssuedByKid == ["test-kid": 1])
                #expect(harness.emulator.stats.grantsRefused == 1, "the new key was tried first, and refused")
                #expect(logs.lines.contains { $0.hasPrefix("warning Maskinporten refused key new-kid") }, "\(logs.lines)")
                #expect(!logs.lines.contains { $0.hasPrefix("error") }, "\(logs.lines)")
                // What /v1/profiles shows: the old key signs, the new one was refused.
                let before = await cache.status().keys
                #expect(before.map(\.kid) == ["test-kid", "new-kid"])
                #expect(before.map(\.signs) == [true, false])
                #expect(before.map(\.verdict) == [.accepted, .refused])
                #expect(before.allSatisfy { $0.bits == 2048 })

                // Registered: the probe, a second after the refusal, signs with it and keeps it.
                try Self.registerBothKeys(harness)
                try await whileRefreshing(broker) {
                    try await Self.waitForPromotion(to: "new-kid", logs: logs, cache: cache, replacing: first)
                    #expect(harness.emulator.stats.tokensIssuedByKid["new-kid"] == 1, "\(harness.emulator.stats)")
                    #expect(logs.lines.contains { $0.hasPrefix("notice signing with key new-kid") && $0.contains("previous_kid=test-kid") }, "\(logs.lines)")
                    #expect(try await cache.token().fingerprint != first.fingerprint, "the probe's token is served")
                    #expect(harness.emulator.stats.grantsRefused == 1, "no refusal after the key was registered")
                    let after = await cache.status().keys
                    #expect(after.map(\.signs) == [false, true])
                    #expect(after.map(\.verdict) == [.untried, .accepted])
                }
            }
        }
    }

    @Test("a reload that changes only a profile's keys keeps its token in hand while the new cache fetches at once with the new keys")
    func keysChangeCarriesTheToken() async throws {
        try await EmulatorHarness.with { harness in
            let (configuration, credentials) = try harness.configuration()
            let logs = CapturedLogs()
            let broker = try TokenBroker(configuration: configuration, credentials: credentials, logger: logs.logger)
            try await shuttingDown(broker) {
                let first = try await #require(broker.cache(for: "notifications")).token()
                // The same client with a key set that adds a newer key (registered on the client).
                try Self.registerBothKeys(harness)
                var changed = credentials
                changed["notifications"] = SigningCredentials(keys: [try Self.key(Keys.rsa2048, "test-kid"), try Self.key(Keys.other2048, "new-kid")])
                let changes = try broker.apply(configuration: configuration, credentials: changed)
                #expect(changes.started == ["notifications"])
                let cache = try #require(broker.cache(for: "notifications"))
                #expect(cache.heldToken()?.fingerprint == first.fingerprint, "the token is handed out at once, not fetched first")
                #expect(harness.emulator.stats.tokensIssuedByKid["new-kid"] == nil)
                try await whileRefreshing(broker) {
                    let deadline = ContinuousClock.now + .seconds(10)
                    while cache.heldToken()?.fingerprint == first.fingerprint, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(50))
                    }
                    #expect(harness.emulator.stats.tokensIssuedByKid["new-kid"] == 1, "the new cache fetched at once, with the newest key")
                    // A change to what the token is for (the scopes) is not carried.
                    var other = configuration
                    other.profiles[0].scopes = [EmulatorHarness.scope, "altinn:serviceowner/instances.read"]
                    _ = try broker.apply(configuration: other, credentials: changed)
                    #expect(broker.cache(for: "notifications")?.heldToken() == nil)
                }
            }
        }
    }

    /// The client with both test keys registered: the file's (test-kid) and the newer (new-kid).
    /// Until `cache` signs with `kid` and holds the probe's token instead of `first` (the
    /// emulator counts a token before the Altinn exchange), at most 15 s.
    static func waitForPromotion(to kid: String, logs: CapturedLogs, cache: TokenCache, replacing first: IssuedToken) async throws {
        let deadline = ContinuousClock.now + .seconds(15)
        while !logs.lines.contains(where: { $0.hasPrefix("notice signing with key \(kid)") }) || cache.heldToken()?.fingerprint == first.fingerprint,
            ContinuousClock.now < deadline
        {
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func registerBothKeys(_ harness: EmulatorHarness) throws {
        harness.emulator.register(
            RegisteredClient(
                clientID: "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17", scopes: [EmulatorHarness.scope],
                keys: [
                    try JWK.parseEncoded(Array(Keys.rsa2048.jwkJSON(kid: "test-kid").utf8)).publicPart,
                    try JWK.parseEncoded(Array(Keys.other2048.jwkJSON(kid: "new-kid").utf8)).publicPart,
                ]))
    }
}
