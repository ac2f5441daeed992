import BrokerConfig
import BrokerCrypto
import BrokerPOSIX
package import BrokerUpstream
import FoundationEssentials
package import Logging

/// One profile's way to a token: sign a grant, ask Maskinporten, and (by default) exchange the
/// answer at Altinn.
package struct TokenFetcher: Sendable {
    /// Builds the grants.
    package let builder: GrantBuilder
    /// Talks to the profile's environment.
    package let upstream: UpstreamClient
    /// Which of the profile's keys signs.
    package let chooser: KeyChooser
    /// When tokens count as obtained.
    private let clock: TokenClock

    /// A fetcher for the builder's profile; a newer key Maskinporten refused is tried again
    /// after `keyProbe`.
    package init(
        builder: GrantBuilder, upstream: UpstreamClient, keyProbe: Duration = .seconds(300), clock: TokenClock = .system,
        logger: Logger = Logger(label: "maskinporten-broker")
    ) {
        self.builder = builder
        self.upstream = upstream
        self.clock = clock
        var logger = logger
        logger[metadataKey: "profile"] = "\(builder.profile.name)"
        chooser = KeyChooser(keys: builder.credentials.keys, probeInterval: keyProbe, clock: clock, logger: logger)
    }

    /// A fetcher sharing `chooser` with others of the same keys: a profile's variants learn
    /// together which key Maskinporten accepts.
    package init(builder: GrantBuilder, upstream: UpstreamClient, chooser: KeyChooser, clock: TokenClock = .system) {
        self.builder = builder
        self.upstream = upstream
        self.chooser = chooser
        self.clock = clock
    }

    /// A new token from upstream, once this client has a free fetch slot.
    package func fetch() async throws(TokenError) -> IssuedToken {
        try await upstream.slots.run { () async throws(TokenError) -> IssuedToken in try await fetchNow() }
    }

    private func fetchNow() async throws(TokenError) -> IssuedToken {
        let profile = builder.profile
        if let leaf = builder.credentials.certificateChain?.first, leaf.notAfter <= clock.date() {
            throw TokenError(
                .rejected, "the business certificate \(leaf.subject) expired on \(UTCTimestamp.format(leaf.notAfter)); install a new one and reload")
        }
        let obtainedAt = clock.date()
        let obtainedInstant = clock.now()
        let token = try await requestToken()
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

    /// Maskinporten's token for a grant signed with the first key of the chooser's order that
    /// it accepts. A refusal of a newer key falls through to the next key within this fetch:
    /// the caller sees only the last answer.
    private func requestToken() async throws(TokenError) -> MaskinportenToken {
        // A business certificate signs with x5c: no kid, nothing to choose.
        let attempts: [SigningKey?] = builder.credentials.certificateChain == nil ? chooser.attempts() : [nil]
        for (index, key) in attempts.enumerated() {
            let last = index == attempts.count - 1
            do {
                let token = try await upstream.requestToken(grant: try await sign(key), tokenEndpoint: builder.profile.environment.tokenEndpoint)
                if let key { chooser.accepted(key) }
                return token
            } catch  where error.kind == .rejected && error.endpoint == .maskinporten {
                if let key { chooser.refused(key, because: error, fallingBack: !last) }
                if last { throw error }
            }
        }
        preconditionFailure("the last attempt returns or throws")
    }

    private func sign(_ key: SigningKey?) async throws(TokenError) -> String {
        let builder = builder
        let now = clock.date()
        do {
            return try await DeviceSigning.run(for: key?.privateKey ?? builder.credentials.privateKey) { try builder.makeGrant(now: now, key: key) }
        } catch let error as BrokerCryptoError where error.code == .providerUnavailable || error.code == .providerKeyUnavailable {
            // The device holding the key (a TPM) did not answer: retried as an upstream that
            // did not answer is, and served again as soon as it does.
            throw TokenError(.unavailable, "the grant could not be signed: \(error.reason)")
        } catch {
            throw TokenError(.rejected, "the grant could not be signed: \(error)")
        }
    }
}
