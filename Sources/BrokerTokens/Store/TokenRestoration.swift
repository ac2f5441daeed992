package import BrokerConfig
import BrokerCrypto
package import FoundationEssentials

/// What became of the tokens kept through a restart: each put back into its profile's cache, or
/// discarded with the reason.
package struct TokenRestoration: Sendable {
    /// Why a kept token was not put back.
    package enum Reason: String, Sendable, CaseIterable {
        /// Its profile is not in the configuration now (or did not load).
        case profileGone = "profile_gone"
        /// Its profile would fetch another token now: client, scopes, resource, endpoints,
        /// exchange or delegation changed.
        case identityChanged = "identity_changed"
        /// It has no more than `min_valid_seconds` left.
        case expired
    }

    /// One kept token: its profile, its variant's name (nil for the profile's own) and, when it
    /// was discarded, why.
    package struct Outcome: Sendable, Equatable {
        package var profile: String
        package var variant: String?
        package var reason: Reason?
    }

    package private(set) var restored: [Outcome] = []
    package private(set) var discarded: [Outcome] = []
    /// The caches that hold a restored token (their first fetch is not waited for).
    var restoredCaches: Set<ObjectIdentifier> = []

    package init() {}

    /// Whether any token was passed in at all.
    package var isEmpty: Bool { restored.isEmpty && discarded.isEmpty }

    /// Discarded tokens counted by reason.
    package var discardedByReason: [Reason: Int] {
        Dictionary(grouping: discarded.compactMap(\.reason), by: { $0 }).mapValues(\.count)
    }

    mutating func discard(_ token: StoredToken, because reason: Reason) {
        discarded.append(Outcome(profile: token.profile, variant: token.variant.isBase ? nil : token.variant.auditName, reason: reason))
    }

    /// Of `tokens` kept for `profile`, those it may hold again: its own and its variants', each
    /// as an `IssuedToken` placed in this process's monotonic time. The rest are recorded as
    /// discarded.
    mutating func take(_ tokens: [StoredToken], for profile: Profile, refresh: RefreshSettings, clock: TokenClock) -> (
        base: IssuedToken?, variants: [(TokenVariant, IssuedToken)]
    ) {
        var base: IssuedToken?
        var variants: [(TokenVariant, IssuedToken)] = []
        for token in tokens {
            let applied = token.variant.isBase ? profile : token.variant.applied(to: profile)
            guard token.identity == TokenStoreIdentity.digest(applied), token.variant.isBase || profile.delegation != nil else {
                discard(token, because: .identityChanged)
                continue
            }
            let issued = token.issued(clock: clock)
            guard clock.remaining(issued) > .seconds(refresh.minValidSeconds) else {
                discard(token, because: .expired)
                continue
            }
            restored.append(Outcome(profile: token.profile, variant: token.variant.isBase ? nil : token.variant.auditName))
            if token.variant.isBase { base = issued } else { variants.append((token.variant, issued)) }
        }
        return (base, variants)
    }
}

/// What decides which tokens a profile gets, as far as Maskinporten and Altinn are concerned:
/// the client, scopes, resource, endpoints, exchange and delegation. Not its keys (any of the
/// client's keys gets the same token), its allow list, proxy or gateway settings.
package enum TokenStoreIdentity {
    /// SHA-256 of `profile`'s identity (with a variant already applied).
    package static func digest(_ profile: Profile) -> [UInt8] {
        let environment = profile.environment
        let parts: [String] = [
            profile.clientID, profile.scopes.joined(separator: " "), (profile.resource ?? []).joined(separator: " "), environment.issuer,
            environment.tokenEndpoint, environment.altinnPlatform ?? "", "\(profile.exchange)", "\(profile.altinnTestOrg)",
            profile.consumerOrg?.digits ?? "", profile.systemUserOrg?.digits ?? "", profile.systemUserExternalRef ?? "",
        ]
        return Digest.sha256(Array(parts.joined(separator: "\u{0}").utf8))
    }
}

extension StoredToken {
    /// `token` as kept, with the identity of `profile` (a variant's cache holds its profile with
    /// the variant applied).
    init(_ token: IssuedToken, profile: Profile, variant: TokenVariant) {
        self.init(
            profile: profile.name, variant: variant, identity: TokenStoreIdentity.digest(profile), kind: token.kind, scope: token.scope, value: token.value,
            expiresAtMilliseconds: Int64((token.expiresAt.timeIntervalSince1970 * 1000).rounded(.down)),
            obtainedAtMilliseconds: Int64((token.obtainedAt.timeIntervalSince1970 * 1000).rounded(.down)))
    }

    /// The kept token as held in this process: obtained as long ago by this process's monotonic
    /// clock as the wall clock says it was.
    func issued(clock: TokenClock) -> IssuedToken {
        let obtainedAt = Date(timeIntervalSince1970: Double(obtainedAtMilliseconds) / 1000)
        let age = max(0, clock.date().timeIntervalSince(obtainedAt))
        return IssuedToken(
            value: value, kind: kind, scope: scope, expiresAt: Date(timeIntervalSince1970: Double(expiresAtMilliseconds) / 1000), obtainedAt: obtainedAt,
            obtainedInstant: clock.now() - .milliseconds(Int64(age * 1000)), fingerprint: Digest.fingerprint(value))
    }
}

extension TokenBroker {
    /// Every token the caches hold that may still be handed out, as the file descriptor store
    /// keeps them: the profiles' own and their variants'.
    package func storedTokens() -> [StoredToken] {
        var tokens: [StoredToken] = []
        for cache in everyCache() {
            guard let token = cache.heldToken(), token.kind != .platformAccess else { continue }
            tokens.append(StoredToken(token, profile: cache.profile, variant: cache.variant ?? .base))
        }
        return tokens
    }
}
