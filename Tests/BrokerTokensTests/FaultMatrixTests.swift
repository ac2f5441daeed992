import Foundation
import Testing

@testable import BrokerTokens
@testable import BrokerUpstream
@testable import MaskinportenEmulator

/// Every upstream fault against the cache's states: cold, holding a token through a refresh,
/// failing after it expired, and recovering.
@Suite("Faults against every cache state", .timeLimit(.minutes(2)))
struct FaultMatrixTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var kind: TokenError.Kind
        /// Upstream calls give up after this long: short where the fault is a hang, long enough
        /// elsewhere that a machine loaded by the whole suite under the thread sanitizer (ten times
        /// slower) never turns an answer into a timeout (5 s did, on a CI machine).
        var timeout: Duration = .seconds(30)
        var apply: @Sendable (Emulator) -> Void
        var testDescription: String { name }
    }

    /// Faults of every kind the issue names; a hang and a late answer run into a 1.5 s timeout.
    static let cases: [Case] = [
        Case(name: "HTTP 500", kind: .unavailable) { $0.inject(Fault(status: 500), into: .token) },
        Case(name: "HTTP 503", kind: .unavailable) { $0.inject(Fault(status: 503), into: .token) },
        Case(name: "HTTP 429 with Retry-After", kind: .unavailable) { $0.inject(Fault(status: 429, retryAfter: 1), into: .token) },
        Case(name: "dropped connection", kind: .unavailable) { $0.inject(Fault(drop: true), into: .token) },
        Case(name: "Maskinporten hangs (timeout)", kind: .unavailable, timeout: .milliseconds(1500)) { $0.inject(Fault(hang: true), into: .token) },
        Case(name: "Altinn answers after the timeout", kind: .unavailable, timeout: .milliseconds(1500)) {
            $0.inject(Fault(delayMilliseconds: 3000), into: .exchange)
        },
        Case(name: "upstream's wall clock jumps an hour ahead", kind: .rejected) { $0.settings = EmulatorSettings(altinnTokenLifetime: 4, clockOffset: 3600) },
        Case(name: "upstream's wall clock jumps an hour back", kind: .rejected) { $0.settings = EmulatorSettings(altinnTokenLifetime: 4, clockOffset: -3600) },
        Case(name: "garbage body", kind: .malformed) { $0.inject(Fault(garbage: true), into: .exchange) },
        Case(name: "Altinn token with an exp in the past", kind: .malformed) { $0.settings = EmulatorSettings(altinnTokenLifetime: 4, altinnExpOffset: -3600) },
    ]

    @Test("cold: the fault's error; then recovery; holding a token: no failure and never an expired token; failing; recovery", arguments: cases)
    func faultAcrossStates(_ fault: Case) async throws {
        try await EmulatorHarness.with { harness in
            let policy = RetryPolicy().scaled(by: 0.05)
            harness.emulator.settings = EmulatorSettings(altinnTokenLifetime: 4)
            let (broker, cache) = try harness.broker(
                minValid: 1, policy: policy, timeouts: UpstreamClient.Timeouts(connect: fault.timeout, total: fault.timeout))

            // Cold: the first request gets the fault's error kind.
            fault.apply(harness.emulator)
            let cold = await #expect(throws: TokenError.self) { try await cache.token() }
            #expect(cold?.kind == fault.kind, "\(fault.name): \(cold?.description ?? "")")

            // Recovery from cold once upstream is back, within one backoff step.
            harness.emulator.clearFaults()
            harness.emulator.settings = EmulatorSettings(altinnTokenLifetime: 4)
            try await whileRefreshing(broker) {
                // At most one backoff step at its cap (rejected faults have the longest), and the fetch.
                let window = max(policy.unavailableCap, policy.malformedCap, policy.rejectedCap) + .seconds(3)
                let first = try await Self.recovered(cache, within: window)
                #expect(first.remaining() >= .seconds(1))

                // Holding a token while its refresh fails: every answer is that token, with at least
                // min_valid left; failures only once it can no longer be handed out.
                fault.apply(harness.emulator)
                let usableUntil = first.expiresAt.addingTimeInterval(-1)
                var served = 0
                var failedEarly = 0
                while Date() < first.expiresAt.addingTimeInterval(0.5) {
                    let asked = Date()
                    do {
                        let token = try await cache.token()
                        served += 1
                        #expect(token.expiresAt.timeIntervalSinceNow >= 0.9, "\(fault.name): handed out with less than min_valid left")
                    } catch {
                        if asked < usableUntil.addingTimeInterval(-1) { failedEarly += 1 }
                    }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(served > 0)
                #expect(failedEarly == 0, "\(fault.name): a failure reached a client while a valid token was held")
                #expect(await cache.status().state == .failing, "\(fault.name)")

                // Failing, then recovery once upstream returns.
                harness.emulator.clearFaults()
                harness.emulator.settings = EmulatorSettings(altinnTokenLifetime: 4)
                let again = try await Self.recovered(cache, within: window)
                #expect(again.fingerprint != first.fingerprint)
                await broker.shutdown()
            }
        }
    }

    static func recovered(_ cache: TokenCache, within limit: Duration) async throws -> IssuedToken {
        let end = ContinuousClock.now + limit
        while ContinuousClock.now < end {
            if let token = try? await cache.token() { return token }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TokenError(.unavailable, "no recovery within \(limit)")
    }
}
