package import BrokerUpstream

/// When to try upstream again after a failure: exponential backoff with jitter, slower for
/// refusals than for outages, never sooner than `Retry-After`.
package struct RetryPolicy: Sendable {
    /// First wait after an outage (5xx, timeouts, 429).
    package var unavailableBase: Duration = .seconds(1)
    /// Longest wait after an outage.
    package var unavailableCap: Duration = .seconds(60)
    /// First wait after a refusal (4xx: a configuration or key problem that retrying rarely fixes).
    package var rejectedBase: Duration = .seconds(15)
    /// Longest wait after a refusal.
    package var rejectedCap: Duration = .seconds(300)
    /// First wait after a malformed answer.
    package var malformedBase: Duration = .seconds(5)
    /// Longest wait after a malformed answer.
    package var malformedCap: Duration = .seconds(120)
    /// Longest `Retry-After` honoured.
    package var retryAfterCap: Duration = .seconds(600)

    /// The default policy.
    package init() {}

    /// The policy with every duration multiplied by `factor` (tests run outages in seconds that
    /// the default policy spreads over minutes).
    package func scaled(by factor: Double) -> RetryPolicy {
        var policy = self
        policy.unavailableBase = unavailableBase * factor
        policy.unavailableCap = unavailableCap * factor
        policy.rejectedBase = rejectedBase * factor
        policy.rejectedCap = rejectedCap * factor
        policy.malformedBase = malformedBase * factor
        policy.malformedCap = malformedCap * factor
        return policy
    }

    /// The wait before attempt number `failures + 1`.
    ///
    /// - Parameters:
    ///   - usable: how long the token held can still be handed out, if one is held: the wait is
    ///     kept to half of it so a refresh is tried again before the token runs out.
    ///   - random: a number in 0..<1 (injected for tests).
    package func delay(after error: TokenError, failures: Int, usable: Duration?, random: Double = Double.random(in: 0..<1)) -> Duration {
        let (base, cap): (Duration, Duration) =
            switch error.kind {
            case .rejected: (rejectedBase, rejectedCap)
            case .malformed: (malformedBase, malformedCap)
            default: (unavailableBase, unavailableCap)
            }
        let exponent = min(max(failures - 1, 0), 30)
        var delay = min(cap, base * Double(1 << min(exponent, 20)))
        // Jitter in [0.5, 1.0): spreads retries of many profiles and hosts.
        delay = delay * (0.5 + random / 2)
        if let usable, usable > .zero {
            delay = min(delay, max(usable / 2, .milliseconds(200)))
        }
        if let retryAfter = error.retryAfter {
            delay = max(delay, min(retryAfter, retryAfterCap))
        }
        return delay
    }
}
