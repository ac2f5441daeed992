import BrokerTestSupport
import Foundation
import Logging
import Testing

@testable import BrokerCrypto
@testable import BrokerTokens
@testable import BrokerUpstream
@testable import MaskinportenEmulator

/// The token pipeline against the emulator, through the core API.
@Suite("Token acquisition against the emulator", .timeLimit(.minutes(2)), .sharedKeys)
struct TokenAcquisitionTests {
    func claims(of jwt: String) throws -> [String: Any] {
        let payload = try TestKey.decodeBase64url(String(jwt.split(separator: ".")[1]))
        return try #require(try JSONSerialization.jsonObject(with: payload) as? [String: Any])
    }

    @Test("the first token is an Altinn token whose lifetime comes from its own exp, not from expires_in")
    func firstToken() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.settings = EmulatorSettings(tokenLifetime: 120, altinnTokenLifetime: 1800)
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            let token = try await cache.token()
            #expect(token.kind == .altinn)
            #expect(token.scope == EmulatorHarness.scope)
            let exp = try #require(try claims(of: token.value)["exp"] as? Int)
            #expect(token.expiresAt == Date(timeIntervalSince1970: TimeInterval(exp)))
            // Counted from when the request started, against an exp set when the exchange ran: a slow
            // machine moves it by a few seconds either way, nowhere near the 120 of expires_in.
            #expect((1790...1810).contains(token.lifetime.components.seconds), "lifetime \(token.lifetime), expires_in was 120")
            #expect(try claims(of: token.value)["urn:altinn:authenticatemethod"] as? String == "maskinporten")
            #expect(token.fingerprint == Digest.fingerprint(token.value))
            #expect(harness.emulator.stats.tokensIssued == 1)
            #expect(harness.emulator.stats.exchangesIssued == 1)
        }
    }

    @Test("exchange: none hands out the Maskinporten token, living by expires_in")
    func maskinportenOnly() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.settings = EmulatorSettings(tokenLifetime: 90)
            let (broker, cache) = try harness.broker(exchange: "none")
            defer { Task { await broker.shutdown() } }
            let token = try await cache.token()
            #expect(token.kind == .maskinporten)
            #expect(abs(token.lifetime.components.seconds - 90) <= 1)
            #expect(try claims(of: token.value)["iss"] as? String == harness.emulator.issuer)
            #expect(harness.emulator.stats.exchangeRequests == 0)
        }
    }

    @Test("the test organisation asks Altinn with ?test=true")
    func testOrganisation() async throws {
        try await EmulatorHarness.with { harness in
            let (configuration, credentials) = try harness.configuration(extra: "\n    altinn_test_org: true")
            let broker = try TokenBroker(
                configuration: configuration, credentials: credentials, logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
            defer { Task { await broker.shutdown() } }
            let token = try await #require(broker.cache(for: "notifications")).token()
            #expect(try claims(of: token.value)["urn:altinn:org"] as? String == "ttd")
        }
    }

    @Test("1,000 requests on a warm cache make no upstream call")
    func warmCache() async throws {
        try await EmulatorHarness.with { harness in
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            let first = try await cache.token()
            harness.emulator.resetStats()
            for _ in 0..<1000 {
                let token = try await cache.token()
                #expect(token.fingerprint == first.fingerprint)
            }
            #expect(harness.emulator.stats == EmulatorStats())
        }
    }

    @Test("500 concurrent requests on a cold profile make exactly one token call and one exchange")
    func singleFlight() async throws {
        try await EmulatorHarness.with { harness in
            // Slow answers, so that every request arrives while the one fetch is under way.
            harness.emulator.inject(Fault(delayMilliseconds: 300), into: .token)
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            let fingerprints = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<500 { group.addTask { try await cache.token().fingerprint } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            #expect(fingerprints.count == 500)
            #expect(Set(fingerprints).count == 1)
            #expect(harness.emulator.stats.tokenRequests == 1)
            #expect(harness.emulator.stats.exchangeRequests == 1)
        }
    }

    @Test("upstream down longer than a token's life: served until exp - min_valid, then upstream_unavailable, never an expired token")
    func outageLongerThanToken() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.settings = EmulatorSettings(altinnTokenLifetime: 4)
            let (broker, cache) = try harness.broker(minValid: 1)
            try await whileRefreshing(broker) {
                let first = try await cache.token()
                harness.emulator.inject(Fault(status: 503), into: .token)
                let usableUntil = first.expiresAt.addingTimeInterval(-1)
                var served = 0
                var refused = 0
                let deadline = first.expiresAt.addingTimeInterval(1.5)
                while Date() < deadline {
                    let asked = Date()
                    do {
                        let token = try await cache.token()
                        served += 1
                        #expect(token.fingerprint == first.fingerprint)
                        #expect(token.expiresAt.timeIntervalSince(Date()) >= 1, "handed out with less than min_valid left")
                        #expect(asked < usableUntil.addingTimeInterval(0.05))
                    } catch let error as TokenError {
                        refused += 1
                        #expect(error.kind == .unavailable)
                        #expect(error.upstream?.status == 503)
                        #expect(asked >= usableUntil.addingTimeInterval(-1.0), "refused \(usableUntil.timeIntervalSince(asked)) s before the token ran out")
                    }
                    try await Task.sleep(for: .milliseconds(50))
                }
                // How many calls fit in each window depends on the machine's load (every suite runs at
                // once; a loaded machine fitted two in the first); what each call got is checked above.
                #expect(served >= 1)
                #expect(refused >= 1)
                let status = await cache.status()
                #expect(status.state == .failing)
            }
        }
    }

    @Test("recovery within one backoff step once upstream returns (virtual time)")
    func recovery() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.inject(Fault(status: 500), into: .token)
            let time = ManualClock()
            let policy = RetryPolicy()
            let (broker, cache) = try harness.broker(policy: policy, clock: time.clock)
            try await whileRefreshing(broker) {
                // Twenty seconds of failing: a few attempts, each a failure.
                await #expect(throws: TokenError.self) { try await cache.token() }
                for _ in 0..<20 {
                    harness.advance(time, by: .seconds(1))
                    #expect(await eventually { await cache.status().state == .failing })
                }
                await #expect(throws: TokenError.self) { try await cache.token() }
                harness.emulator.clearFaults()
                let cleared = time.now
                // Served again within one backoff step of upstream's return, and no later.
                while await cache.status().state != .ready, time.now - cleared <= policy.unavailableCap + .seconds(1) {
                    harness.advance(time, by: .seconds(1))
                    // A caller starts the fetch once the backoff has run out (or joins the loop's).
                    _ = try? await cache.token()
                }
                #expect(time.now - cleared <= policy.unavailableCap + .seconds(1))
                #expect(await cache.status().state == .ready)
            }
        }
    }

    @Test("Retry-After is honoured: no call before it passes, even with callers asking (virtual time)")
    func retryAfter() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.inject(Fault(status: 429, retryAfter: 5, count: 1), into: .token)
            let time = ManualClock()
            let (broker, cache) = try harness.broker(clock: time.clock)
            try await whileRefreshing(broker) {
                var refusal: TokenError?
                while refusal == nil {
                    do { _ = try await cache.token() } catch let error as TokenError { refusal = error }
                }
                #expect(refusal?.kind == .unavailable)
                #expect(refusal?.upstream?.status == 429)
                #expect(refusal?.retryAfter == .seconds(5))
                // Callers every 100 ms for 4.9 s: each gets the refusal, none reaches upstream.
                for _ in 0..<49 {
                    harness.advance(time, by: .milliseconds(100))
                    await #expect(throws: TokenError.self) { try await cache.token() }
                }
                #expect(harness.emulator.stats.tokenRequests == 1, "called again before Retry-After passed")
                harness.advance(time, by: .milliseconds(200))
                let token = try await cache.token()
                #expect(token.kind == .altinn)
                #expect(harness.emulator.stats.tokenRequests == 2)
            }
        }
    }

    @Test("an outage costs a bounded number of upstream calls, however many callers ask (virtual time: a minute)")
    func outageIsBounded() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.inject(Fault(status: 503), into: .token)
            let time = ManualClock()
            let (broker, cache) = try harness.broker(policy: RetryPolicy(), clock: time.clock)
            try await whileRefreshing(broker) {
                _ = try? await cache.token()
                // Ten callers a second for 60 s.
                var asked = 0
                for _ in 0..<600 {
                    harness.advance(time, by: .milliseconds(100))
                    _ = try? await cache.token()
                    asked += 1
                }
                let calls = harness.emulator.stats.tokenRequests
                #expect(asked == 600)
                // Waits of 1, 2, 4, 8, 16, 32, 60 s, each jittered to between half and all of it:
                // at most 8 calls in 60 s.
                #expect(calls <= 8, "\(calls) calls in a 60 s outage")
                #expect(calls >= 4)
            }
        }
    }

    @Test(
        "faults become the right kind of error",
        arguments: [
            ("garbage body", Fault(garbage: true), FaultTarget.token, TokenError.Kind.malformed),
            ("dropped connection", Fault(drop: true), .token, .unavailable),
            ("hang past the timeout", Fault(hang: true), .token, .unavailable),
            ("HTTP 400", Fault(status: 400), .token, .rejected),
            ("HTTP 502 at Altinn", Fault(status: 502), .exchange, .unavailable),
            ("garbage from Altinn", Fault(garbage: true), .exchange, .malformed),
        ])
    func faults(_ name: String, _ fault: Fault, _ target: FaultTarget, _ kind: TokenError.Kind) async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.inject(fault, into: target)
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            let error = await #expect(throws: TokenError.self, "\(name)") { try await cache.token() }
            #expect(error?.kind == kind, "\(name): \(error?.description ?? "")")
            #expect(error?.endpoint == (target == .token ? .maskinporten : .altinn))
        }
    }

    @Test("a refused grant carries Maskinporten's error, code and all")
    func refusedGrant() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.register(
                RegisteredClient(
                    clientID: "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17", scopes: ["other:scope"],
                    keys: [try JWK.parseEncoded(Array(Keys.rsa2048.jwkJSON(kid: "test-kid").utf8)).publicPart]))
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            let error = await #expect(throws: TokenError.self) { try await cache.token() }
            #expect(error?.kind == .rejected)
            #expect(error?.upstream?.status == 400)
            #expect(error?.upstream?.error == "invalid_scope")
            #expect(error?.upstream?.errorDescription?.hasPrefix("MP-140: ") == true)
            #expect(error?.upstream?.errorURI != nil)
        }
    }

    @Test("an Altinn token that has already expired is refused as malformed")
    func badExp() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.settings = EmulatorSettings(altinnExpOffset: -3600)
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            let error = await #expect(throws: TokenError.self) { try await cache.token() }
            #expect(error?.kind == .malformed)
            #expect(error?.reason.contains("already expired") == true)
        }
    }

    @Test("a clock more than 5 s off the upstream's is reported in the log; tokens never are")
    func clockSkewWarning() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.settings = EmulatorSettings(dateOffset: 30)
            let logs = CapturedLogs()
            let (broker, cache) = try harness.broker(logger: logs.logger)
            defer { Task { await broker.shutdown() } }
            let token = try await cache.token()
            // The emulator's clock is 30 s ahead: the skew is -30 s, less the time the answer took
            // to arrive (seconds, on a loaded machine), and never more.
            let skews = logs.lines.filter { $0.contains("clock differs") }.compactMap { line in
                line.firstMatch(of: /skew_seconds=(-?\d+)/).flatMap { Int($0.1) }
            }
            #expect(skews.contains { (-31)...(-10) ~= $0 }, "\(logs.lines)")
            #expect(logs.lines.contains { $0.contains("token obtained") && $0.contains(token.fingerprint) })
            for line in logs.lines {
                #expect(!line.contains(token.value.prefix(40)), "a token reached the log: \(line)")
            }
        }
    }

    @Test("a forced refresh fetches anew, at most once per 10 s")
    func forcedRefresh() async throws {
        try await EmulatorHarness.with { harness in
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            let first = try await cache.token()
            // The 10 s count from the start of the forced refresh (the fetch takes its time).
            let refreshed = ContinuousClock.now
            let second = try await cache.refreshNow()
            #expect(second.fingerprint != first.fingerprint)
            let limited = await #expect(throws: TokenError.self) { try await cache.refreshNow() }
            let elapsed = ContinuousClock.now - refreshed
            #expect(limited?.kind == .rateLimited)
            // The rest of the 10 s, whatever the machine's load made of the time in between.
            let retryAfter = limited?.retryAfter ?? .zero
            #expect(retryAfter > .seconds(10) - elapsed - .milliseconds(500) && retryAfter <= .seconds(10), "\(retryAfter) after \(elapsed)")
            #expect(harness.emulator.stats.tokenRequests == 2)
        }
    }

    @Test("a caller's min_valid beyond what upstream issues is refused, not fetched over and over")
    func insufficientLifetime() async throws {
        try await EmulatorHarness.with { harness in
            harness.emulator.settings = EmulatorSettings(altinnTokenLifetime: 600)
            let (broker, cache) = try harness.broker()
            defer { Task { await broker.shutdown() } }
            _ = try await cache.token()
            for _ in 0..<5 {
                let error = await #expect(throws: TokenError.self) { try await cache.token(minValid: 3600) }
                #expect(error?.kind == .insufficientLifetime)
            }
            #expect(harness.emulator.stats.tokenRequests == 1)
            #expect(try await cache.token(minValid: 300).kind == .altinn)
        }
    }
}
