import BrokerUpstream
package import FoundationEssentials

/// The time the token modules go by: the system's clocks in the daemon, a test's in tests, so
/// that refresh ahead, backoff, key probes and rotation schedules can be tested in virtual time
/// instead of by sleeping through them.
///
/// Only scheduling reads it. A grant's `iat` and `exp` and an upstream answer's `Date` stay on
/// the system's clock: they are checked by someone else's clock.
package struct TokenClock: Sendable {
    /// The monotonic now: schedules, backoff, probes.
    package let now: @Sendable () -> ContinuousClock.Instant
    /// The wall-clock now: expiry as resource servers see it.
    package let date: @Sendable () -> Date
    /// Returns at `deadline`, or throws `CancellationError` when the task is cancelled first.
    package let sleep: @Sendable (_ deadline: ContinuousClock.Instant) async throws -> Void

    /// A clock of the given parts.
    package init(
        now: @escaping @Sendable () -> ContinuousClock.Instant, date: @escaping @Sendable () -> Date,
        sleep: @escaping @Sendable (_ deadline: ContinuousClock.Instant) async throws -> Void
    ) {
        self.now = now
        self.date = date
        self.sleep = sleep
    }

    /// The system's clocks. Sleeps are scheduled on an event loop (`sleepOnEventLoop`): the
    /// refresh loop's sleep is cancelled whenever a fetch ends.
    package static let system = TokenClock(
        now: { .now }, date: { Date() }, sleep: { try await sleepOnEventLoop(for: ContinuousClock.now.duration(to: $0)) })

    /// Time left of `token` by this clock's two nows.
    package func remaining(_ token: IssuedToken) -> Duration {
        token.remaining(now: date(), instant: now())
    }
}
