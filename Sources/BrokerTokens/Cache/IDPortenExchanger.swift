package import BrokerConfig
import BrokerCrypto
import BrokerPOSIX
package import BrokerUpstream
import FoundationEssentials

/// Turns people's ID-porten access tokens into Altinn tokens, caching each result by a hash of
/// the input until the Altinn token's expiry. Neither token is ever logged.
package actor IDPortenExchanger {
    /// The settings.
    package nonisolated let settings: IDPortenExchangeSettings
    private let upstream: UpstreamClient
    private let minValid: Duration
    private var cache: [String: IssuedToken] = [:]
    private var inFlight: [String: Task<Result<IssuedToken, TokenError>, Never>] = [:]

    /// Entries kept at most; expired ones go first, then the soonest to expire.
    package static let capacity = 10_000

    /// An exchanger for `settings` over `upstream` (the token broker's, which closes it).
    package init(settings: IDPortenExchangeSettings, upstream: UpstreamClient, minValidSeconds: Int) {
        self.settings = settings
        self.upstream = upstream
        self.minValid = .seconds(minValidSeconds)
    }

    /// The Altinn token for `idPortenToken`.
    ///
    /// - Throws: `TokenError`: `.rejected` when the input is not a JWT or Altinn refuses it
    ///   (with Altinn's answer), `.unavailable`/`.malformed` when Altinn fails.
    package func exchange(_ idPortenToken: String) async throws(TokenError) -> IssuedToken {
        let input = idPortenToken.trimmed()
        guard input.split(separator: ".", omittingEmptySubsequences: false).count == 3, input.count < 16_384,
            input.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") })
        else {
            throw TokenError(.rejected, "the request body is not an ID-porten access token (a JWT)")
        }
        let key = Digest.sha256(input.utf8).map { String($0, radix: 16) }.joined()
        if let token = cache[key], token.remaining() >= minValid { return token }
        let result: Result<IssuedToken, TokenError>
        if let task = inFlight[key] {
            result = await task.value
        } else {
            let upstream = self.upstream
            guard let platform = settings.environment.altinnPlatform else {
                throw TokenError(.rejected, "environment \(settings.environment.name) has no Altinn platform")
            }
            let task = Task { () -> Result<IssuedToken, TokenError> in
                let obtainedAt = Date()
                let obtainedInstant = ContinuousClock.now
                let outcome: Result<IssuedToken, TokenError>
                do throws(TokenError) {
                    let altinn = try await upstream.exchange(idPortenToken: input, platform: platform)
                    outcome = .success(
                        IssuedToken(
                            value: altinn.value, kind: .altinn, scope: "", expiresAt: altinn.expiresAt,
                            obtainedAt: obtainedAt, obtainedInstant: obtainedInstant, fingerprint: Digest.fingerprint(altinn.value)))
                } catch {
                    outcome = .failure(error)
                }
                return self.record(key, outcome)
            }
            inFlight[key] = task
            result = await task.value
        }
        let token = try result.get()
        guard token.remaining() >= minValid else {
            throw TokenError(.malformed, endpoint: .altinn, "the Altinn token for this ID-porten token lives less than min_valid_seconds")
        }
        return token
    }

    private func record(_ key: String, _ outcome: Result<IssuedToken, TokenError>) -> Result<IssuedToken, TokenError> {
        inFlight[key] = nil
        if case .success(let token) = outcome {
            if cache.count >= Self.capacity { evict() }
            cache[key] = token
        }
        return outcome
    }

    private func evict() {
        let now = Date()
        cache = cache.filter { $0.value.expiresAt > now }
        if cache.count >= Self.capacity, let soonest = cache.min(by: { $0.value.expiresAt < $1.value.expiresAt })?.key {
            cache[soonest] = nil
        }
    }

    /// Cached entries now (for tests and metrics).
    package var cachedCount: Int { cache.count }
}
