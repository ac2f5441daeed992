package import FoundationEssentials

/// What kind of token a profile hands out.
package enum TokenKind: String, Sendable, Hashable, Codable {
    /// An Altinn token from the exchange.
    case altinn
    /// The Maskinporten access token itself.
    case maskinporten
    /// An Altinn Platform Access Token, minted here.
    case platformAccess = "platform_access"
}

/// A token as obtained from upstream, with its expiry on both clocks.
///
/// Expiry is kept twice: as the wall-clock `expiresAt` (what resource servers check) and as an
/// instant on the monotonic clock (immune to the wall clock being set). A token counts as
/// expired as soon as either says so.
package struct IssuedToken: Sendable {
    /// The token itself. Never logged: use `fingerprint`.
    package let value: String
    /// Altinn or Maskinporten.
    package let kind: TokenKind
    /// The scopes granted.
    package let scope: String
    /// Wall-clock expiry.
    package let expiresAt: Date
    /// Wall-clock time it was obtained.
    package let obtainedAt: Date
    /// Monotonic time it was obtained.
    package let obtainedInstant: ContinuousClock.Instant
    /// A short SHA-256 prefix identifying the token in audit lines.
    package let fingerprint: String

    /// A token obtained now.
    package init(
        value: String, kind: TokenKind, scope: String, expiresAt: Date, obtainedAt: Date = Date(), obtainedInstant: ContinuousClock.Instant = .now,
        fingerprint: String
    ) {
        self.value = value
        self.kind = kind
        self.scope = scope
        self.expiresAt = expiresAt
        self.obtainedAt = obtainedAt
        self.obtainedInstant = obtainedInstant
        self.fingerprint = fingerprint
    }

    /// The lifetime it had when obtained.
    package var lifetime: Duration {
        Self.duration(seconds: expiresAt.timeIntervalSince(obtainedAt))
    }

    /// Time left: the smaller of what the wall clock and the monotonic clock say.
    package func remaining(now: Date = Date(), instant: ContinuousClock.Instant = .now) -> Duration {
        let byWall = Self.duration(seconds: expiresAt.timeIntervalSince(now))
        let byMonotonic = (obtainedInstant + lifetime) - instant
        return min(byWall, byMonotonic)
    }

    /// `seconds` to the nanosecond: `Duration.seconds(Double)` converts through a generic
    /// 128-bit path that cost more than the rest of a held token's check, made on every request.
    static func duration(seconds: Double) -> Duration {
        let nanoseconds = seconds * 1e9
        guard nanoseconds.magnitude < 9e18 else { return .seconds(seconds) }
        return .nanoseconds(Int64(nanoseconds))
    }
}
