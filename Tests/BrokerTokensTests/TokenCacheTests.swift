import Foundation
import Testing

@testable import BrokerTokens
@testable import MaskinportenEmulator

@Suite("Token lifetime and refresh scheduling")
struct TokenCacheTests {
    @Test("remaining time is the smaller of the wall clock's and the monotonic clock's")
    func bothClocks() {
        let obtained = Date(timeIntervalSince1970: 1_800_000_000)
        let instant = ContinuousClock.now
        let token = IssuedToken(
            value: "x", kind: .altinn, scope: "s", expiresAt: obtained.addingTimeInterval(1800), obtainedAt: obtained, obtainedInstant: instant,
            fingerprint: "f")
        #expect(token.lifetime == .seconds(1800))
        // Both clocks agree: 1000 s in, 800 s left.
        #expect(token.remaining(now: obtained.addingTimeInterval(1000), instant: instant + .seconds(1000)) == .seconds(800))
        // The wall clock jumps forward an hour: the token counts as expired.
        #expect(token.remaining(now: obtained.addingTimeInterval(4600), instant: instant + .seconds(1000)) < .zero)
        // The wall clock jumps back an hour: the monotonic clock still says 800 s.
        #expect(token.remaining(now: obtained.addingTimeInterval(-2600), instant: instant + .seconds(1000)) == .seconds(800))
    }

    @Test("refresh comes at at_fraction of the lifetime, within ±5 % of it, and always before min_valid", arguments: [0.0, 0.25, 0.5, 0.75, 1.0])
    func refreshDelay(_ random: Double) {
        let delay = TokenCache.refreshDelay(lifetime: .seconds(1800), atFraction: 0.75, minValid: .seconds(10), random: random)
        #expect(delay >= .seconds(1350 - 90) && delay <= .seconds(1350 + 90))
        let late = TokenCache.refreshDelay(lifetime: .seconds(100), atFraction: 0.95, minValid: .seconds(30), random: random)
        #expect(late <= .seconds(63), "refresh must come well before the last 30 s: \(late)")
    }

    @Test("jitter spreads the refreshes of many profiles over a window, not one instant")
    func spread() {
        let delays = (0..<1000).map { _ in
            TokenCache.refreshDelay(lifetime: .seconds(1800), atFraction: 0.75, minValid: .seconds(10), random: Double.random(in: 0...1))
        }
        let seconds = delays.map { Double($0.components.seconds) }
        let window = seconds.max()! - seconds.min()!
        #expect(window > 150, "1,000 profiles refresh within \(window) s of each other")
        #expect(Set(seconds).count > 100)
    }

    @Test("the first tokens' refreshes spread over half the lifetime: profiles started together do not stay in step")
    func firstSpread() {
        let lifetime = 1800.0
        let seconds = (0..<1000).map { _ in
            let delay = TokenCache.refreshDelay(
                lifetime: .seconds(1800), atFraction: 0.75, minValid: .seconds(10), random: Double.random(in: 0...1), first: true)
            return Double(delay.components.seconds)
        }
        #expect(seconds.min()! >= lifetime * 0.375 && seconds.max()! <= lifetime * 0.8)
        // 1,000 refreshes over ~765 s: no minute holds more than a fifth of them.
        let perMinute = Dictionary(grouping: seconds, by: { Int($0 / 60) }).mapValues(\.count)
        #expect(perMinute.values.max()! < 200, "\(perMinute)")
        #expect(perMinute.count >= 12)
    }

    @Test("the refresher fetches ahead of expiry and the new token is served without a gap (virtual time: an hour of 30-minute tokens)")
    func refreshAhead() async throws {
        try await EmulatorHarness.with { harness in
            let time = ManualClock()
            let (broker, cache) = try harness.broker(clock: time.clock)
            try await whileRefreshing(broker) {
                try await shuttingDown(broker) {
                    let first = try await cache.token()
                    #expect(abs((first.lifetime - .seconds(1800)).seconds) < 15, "about 30 minutes: \(first.lifetime)")
                    var fingerprints = [first.fingerprint]
                    // A minute at a time through two lifetimes: every answer has min_valid left.
                    for _ in 0..<60 {
                        #expect(await harness.advance(time, by: .seconds(60), settling: cache))
                        let token = try await cache.token()
                        #expect(time.clock.remaining(token) >= .seconds(10), "a token with less than min_valid left was served")
                        if fingerprints.last != token.fingerprint { fingerprints.append(token.fingerprint) }
                    }
                    // At 37.5-80 % of the first token's life, then 70-80 % of each next one's.
                    #expect(fingerprints.count >= 3 && fingerprints.count <= 5, "\(fingerprints.count) tokens in an hour")
                    #expect(harness.emulator.stats.exchangesIssued == fingerprints.count)
                }
            }
        }
    }

    @Test("what is prepared of a token is made once while it is held, and anew for the next token")
    func preparedOncePerToken() async throws {
        try await EmulatorHarness.with { harness in
            let time = ManualClock()
            let (broker, cache) = try harness.broker(clock: time.clock)
            try await shuttingDown(broker) {
                var made = 0
                func prepared(_ token: IssuedToken, as tag: String) -> String {
                    cache.prepared(for: token) {
                        made += 1
                        return tag + ":" + $0.fingerprint
                    }
                }
                let first = try await cache.token()
                #expect(prepared(first, as: "a") == "a:" + first.fingerprint)
                #expect(prepared(first, as: "b") == "a:" + first.fingerprint)
                #expect(made == 1)
                // Within min_valid of its expiry: the next request fetches the next token. (By
                // what the token has left, not its nominal 30 minutes: its expiry is the
                // emulator's, which went on with real time while the first fetch took it.)
                harness.advance(time, by: time.clock.remaining(first) - .seconds(5))
                let next = try await cache.token()
                #expect(next.value != first.value)
                #expect(prepared(next, as: "c") == "c:" + next.fingerprint)
                // A token no longer held is prepared for the asker, not kept in place of the held one's.
                #expect(prepared(first, as: "d") == "d:" + first.fingerprint)
                #expect(prepared(next, as: "e") == "c:" + next.fingerprint)
                #expect(made == 3)
            }
        }
    }
}
