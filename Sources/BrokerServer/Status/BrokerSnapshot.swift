package import BrokerConfig
package import BrokerCrypto
package import BrokerTokens
package import FoundationEssentials

/// What the broker holds at one moment, gathered once by walking the profiles, their caches and
/// the Platform Access Token issuers: `/v1/profiles`, readiness, the metrics and systemd's STATUS
/// line are each a rendering of it, so they cannot disagree on a profile's state.
package struct BrokerSnapshot: Sendable {
    /// One configured profile.
    package struct ProfileEntry: Sendable {
        /// The profile as configured.
        package var profile: Profile
        /// Its cache's status; nil when the profile could not be loaded (its key, say).
        package var status: ProfileStatus?
        /// Why it could not be loaded, when it could not.
        package var unavailable: String?
        /// Its business certificate (leaf), when it signs with one.
        package var certificate: Certificate?
        /// What key rotation is doing, when the profile rotates.
        package var rotation: KeyRotation.Status?
        /// Cached delegation variants, for a profile with `delegation:`.
        package var variants: Int?

        /// The state as clients and metrics name it: the cache's, or `unavailable`.
        package var state: String { status?.state.rawValue ?? "unavailable" }
    }

    /// One Platform Access Token issuer.
    package struct IssuerEntry: Sendable {
        /// Its configured name.
        package var name: String
        /// Its certificate (leaf), when its key loaded.
        package var certificate: Certificate?
        /// Why its key or certificate could not be loaded, when it could not.
        package var unavailable: String?
    }

    /// The profiles, in the configuration's order.
    package var profiles: [ProfileEntry]
    /// The Platform Access Token issuers, by name.
    package var platformAccessTokens: [IssuerEntry]
    /// When it was taken.
    package var takenAt: Date

    /// Walks `state`'s profiles and issuers once.
    package static func gather(state: ServingState, broker: TokenBroker, rotation: KeyRotation?, now: Date = Date()) async -> BrokerSnapshot {
        var profiles: [ProfileEntry] = []
        for profile in state.configuration.profiles {
            let cache = broker.cache(for: profile.name)
            profiles.append(
                ProfileEntry(
                    profile: profile, status: await cache?.status(), unavailable: cache == nil ? state.unavailable[profile.name] : nil,
                    certificate: cache?.credentials.certificateChain?.first, rotation: rotation?.status(of: profile.name),
                    variants: profile.delegation == nil ? nil : broker.variantCount(of: profile.name)))
        }
        var issuers = state.platformAccessTokens.map { IssuerEntry(name: $0.key, certificate: $0.value.certificate) }
        issuers += state.unavailablePlatformAccessTokens.map { IssuerEntry(name: $0.key, unavailable: $0.value) }
        return BrokerSnapshot(profiles: profiles, platformAccessTokens: issuers.sorted { $0.name < $1.name }, takenAt: now)
    }

    /// Whole days until `certificate` expires, rounded down (negative once it has).
    package func daysLeft(_ certificate: Certificate) -> Int {
        Int((certificate.notAfter.timeIntervalSince(takenAt) / 86_400).rounded(.down))
    }

    /// `serving 3 profiles: 2 ready, 1 failing`: systemd's STATUS line.
    package var statusLine: String {
        var counts: [String: Int] = [:]
        for entry in profiles { counts[entry.state, default: 0] += 1 }
        let parts = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }
        return "serving \(profiles.count) profile\(profiles.count == 1 ? "" : "s")" + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
    }
}
