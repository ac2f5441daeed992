import BrokerCrypto
import Foundation

/// One profile's way to a token: sign a grant, ask Maskinporten, and (by default) exchange the
/// answer at Altinn.
public struct TokenFetcher: Sendable {
    /// Builds the grants.
    public let builder: GrantBuilder
    /// Talks to the profile's environment.
    public let upstream: UpstreamClient

    /// A fetcher for the builder's profile.
    public init(builder: GrantBuilder, upstream: UpstreamClient) {
        self.builder = builder
        self.upstream = upstream
    }

    /// A new token from upstream, once this client has a free fetch slot.
    public func fetch() async throws(TokenError) -> IssuedToken {
        try await upstream.slots.run { () async throws(TokenError) -> IssuedToken in try await fetchNow() }
    }

    private func fetchNow() async throws(TokenError) -> IssuedToken {
        let profile = builder.profile
        if let leaf = builder.credentials.certificateChain?.first, leaf.notAfter <= Date() {
            throw TokenError(
                .rejected, "the business certificate \(leaf.subject) expired on \(leaf.notAfter.formatted(.iso8601)); install a new one and reload")
        }
        let grant: String
        do {
            grant = try builder.makeGrant()
        } catch {
            throw TokenError(.rejected, "the grant could not be signed: \(error)")
        }
        let obtainedAt = Date()
        let obtainedInstant = ContinuousClock.now
        let token = try await upstream.requestToken(grant: grant, tokenEndpoint: profile.environment.tokenEndpoint)
        switch profile.exchange {
        case .none:
            return IssuedToken(
                value: token.accessToken, kind: .maskinporten, scope: token.scope,
                expiresAt: obtainedAt.addingTimeInterval(TimeInterval(token.expiresIn)),
                obtainedAt: obtainedAt, obtainedInstant: obtainedInstant, fingerprint: Digest.fingerprint(token.accessToken)
            )
        case .altinn:
            guard let platform = profile.environment.altinnPlatform else {
                throw TokenError(.rejected, "environment \(profile.environment.name) has no Altinn platform")
            }
            let exchanged = try await upstream.exchange(maskinportenToken: token.accessToken, platform: platform, testOrganisation: profile.altinnTestOrg)
            // The Altinn token lives by its own exp, not by Maskinporten's expires_in. Its
            // lifetime is counted from when the request started, the cautious end.
            return IssuedToken(
                value: exchanged.value, kind: .altinn, scope: token.scope, expiresAt: exchanged.expiresAt,
                obtainedAt: obtainedAt, obtainedInstant: obtainedInstant, fingerprint: Digest.fingerprint(exchanged.value)
            )
        }
    }
}
