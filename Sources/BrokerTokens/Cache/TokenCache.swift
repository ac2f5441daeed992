package import BrokerConfig
import BrokerPOSIX
package import BrokerUpstream
package import FoundationEssentials
package import Logging
import Metrics
import NIOConcurrencyHelpers

/// What a profile's cache is doing, for `/readyz`, `/v1/profiles` and `STATUS=`.
package struct ProfileStatus: Sendable {
    /// The profile's state.
    package enum State: String, Sendable, Codable {
        /// No token yet; the first fetch is under way or waiting to retry.
        case starting
        /// A token is held and may be handed out.
        case ready
        /// A token is held and a refresh is under way.
        case refreshing
        /// A token is held, but refreshing it is failing.
        case degraded
        /// No token that may be handed out, and fetching is failing.
        case failing
    }

    /// The profile's state.
    package var state: State
    /// The held token's expiry.
    package var expiresAt: Date?
    /// The last failure, while failures continue.
    package var lastError: TokenError?
    /// The profile's keys, oldest first; empty for a business certificate.
    package var keys: [KeyStatus] = []
    /// The held token came from the file descriptor store at start, not from upstream.
    package var restored = false
    /// Whether a token that may be handed out is held.
    package var servable: Bool { state == .ready || state == .refreshing || state == .degraded }
}

/// One profile's token: fetched at start, refreshed ahead of expiry with jitter, shared by
/// concurrent callers, retried with backoff, and never handed out with less than
/// `min_valid_seconds` left.
package actor TokenCache {
    /// The profile: its grant builder's, not a second copy of it in every cache.
    package nonisolated var profile: Profile { fetcher.builder.profile }
    /// Its key material (for certificate expiry in readiness and metrics).
    package nonisolated var credentials: SigningCredentials { fetcher.builder.credentials }
    private nonisolated let fetcher: TokenFetcher
    /// The client this profile's calls leave by (its environment's trust and proxy): the
    /// gateway's, without a lookup per call.
    package nonisolated var upstream: UpstreamClient { fetcher.upstream }
    private nonisolated let refresh: RefreshSettings
    /// Signalled when a fetch ends: the broker's refresh loop then looks at this cache again.
    private nonisolated let wakeup: RefreshWakeup
    private let policy: RetryPolicy
    /// What schedules, backoff and expiry go by.
    private nonisolated let clock: TokenClock
    private let logger: Logger

    private var current: IssuedToken? {
        didSet { held.withLockedValue { $0 = Held(token: current) } }
    }
    /// `current`, readable without entering the actor: the request path answers from it.
    private nonisolated let held = NIOLockedValueBox(Held())
    /// The held token, and whether it was handed out since it was obtained, beyond the request
    /// it was fetched for (a variant is refreshed ahead of expiry only then).
    private struct Held {
        var token: IssuedToken?
        var used = false
        /// What the server made of `token` for its answers (`prepared(for:_:)`).
        var prepared: (token: String, value: any Sendable)?
    }
    /// The delegation this cache's tokens carry; nil for the profile's own token. A variant is
    /// refreshed ahead of expiry only while it is used, and is let go once idle.
    package nonisolated let variant: TokenVariant?
    private var inFlight: Task<Result<IssuedToken, TokenError>, Never>?
    private var lastError: TokenError?
    private var failures = 0
    private var retryAt: ContinuousClock.Instant?
    private var refreshAt: ContinuousClock.Instant?
    private var lastForced: ContinuousClock.Instant?
    /// A key was registered while a fetch was under way: fetch again right after it.
    private var probeAfterFetch = false
    /// When the cache was made, and whether a fetch of it has ended: a variant is not idle
    /// before the request that made it has fetched.
    private let made: ContinuousClock.Instant
    private var fetchEnded = false
    /// How long a new variant waits for its first fetch to start before it counts as idle.
    static let firstFetchGrace: Duration = .seconds(10)

    /// The shortest time between two forced refreshes (`POST .../refresh`).
    package static let forcedRefreshInterval: Duration = .seconds(10)

    /// A cache for `fetcher`'s profile. With `carrying`, a token of the cache this one replaces
    /// (its keys changed) is handed out while this cache fetches anew at once with its keys. With
    /// `restoring`, a token kept through a restart is held as if it had just been fetched: served
    /// at once, refreshed when its own schedule says.
    package init(
        fetcher: TokenFetcher, refresh: RefreshSettings, policy: RetryPolicy = RetryPolicy(), wakeup: RefreshWakeup = RefreshWakeup(),
        carrying token: IssuedToken? = nil, restoring restored: IssuedToken? = nil, variant: TokenVariant? = nil, clock: TokenClock = .system,
        logger: Logger
    ) {
        self.clock = clock
        made = clock.now()
        self.variant = variant
        self.wakeup = wakeup
        self.fetcher = fetcher
        self.refresh = refresh
        self.policy = policy
        var logger = logger
        logger[metadataKey: "profile"] = "\(fetcher.builder.profile.name)"
        self.logger = logger
        if let token, clock.remaining(token) >= .seconds(refresh.minValidSeconds) {
            // Observers do not run in an initialiser: `held` is set with it.
            current = token
            held.withLockedValue { $0 = Held(token: token) }
            refreshAt = clock.now()
        } else if let restored, clock.remaining(restored) >= .seconds(refresh.minValidSeconds) {
            current = restored
            held.withLockedValue { $0 = Held(token: restored) }
            refreshAt =
                restored.obtainedInstant
                + Self.refreshDelay(
                    lifetime: restored.lifetime, atFraction: refresh.atFraction, minValid: .seconds(refresh.minValidSeconds), random: Double.random(in: 0...1))
            fetchEnded = true
            isRestored = true
        }
    }

    private var minValid: Duration { .seconds(refresh.minValidSeconds) }

    /// Whether the held token is one kept through a restart (until the first fetch replaces it).
    private var isRestored = false

    // MARK: - Serving

    /// A token with at least `min_valid_seconds` (and at least `minValid`, if given) left.
    ///
    /// Served from the cache while it holds one; otherwise joins the fetch under way, or starts
    /// one unless the last failure's backoff is still running, in which case that failure is
    /// the answer (so that callers cannot turn an outage into a storm).
    package func token(minValid requested: Int? = nil) async throws(TokenError) -> IssuedToken {
        if let token = heldToken(minValid: requested) { return token }
        let needed = max(minValid, .seconds(requested ?? 0))
        if let token = current, clock.remaining(token) >= minValid, clock.now() - token.obtainedInstant < Self.forcedRefreshInterval {
            throw insufficient(token, needed: needed)
        }
        let token = try await joinOrFetch()
        guard clock.remaining(token) >= needed else { throw insufficient(token, needed: needed) }
        // The request a fetch was made for does not count as a use: a variant asked for once is
        // not refreshed, and goes when its token runs out.
        return token
    }

    /// The held token if it has at least `min_valid_seconds` (and `minValid`, if given) left,
    /// without waiting for the actor: what `token(minValid:)` answers first, for the request
    /// path to serve on its own thread. Nil means: ask `token(minValid:)`.
    package nonisolated func heldToken(minValid requested: Int? = nil) -> IssuedToken? {
        guard
            let token = held.withLockedValue({ held in
                held.used = true
                return held.token
            })
        else { return nil }
        return clock.remaining(token) >= max(.seconds(refresh.minValidSeconds), .seconds(requested ?? 0)) ? token : nil
    }

    /// `make(token)`, made once per token and kept with it until the token changes: the
    /// server's answer body, so that a token's JSON is written once however many requests it
    /// serves, and goes with the cache when a variant is let go.
    package nonisolated func prepared<Value: Sendable>(for token: IssuedToken, _ make: (IssuedToken) -> Value) -> Value {
        // Equal tokens share their storage: the comparison is a pointer check, not 1 KiB of text.
        if let value = held.withLockedValue({ $0.prepared?.token == token.value ? $0.prepared?.value as? Value : nil }) {
            return value
        }
        let value = make(token)
        held.withLockedValue { held in
            if held.token?.value == token.value { held.prepared = (token.value, value) }
        }
        return value
    }

    /// A newly fetched token, at most once per `forcedRefreshInterval`; a fetch already under
    /// way counts as the new one.
    package func refreshNow() async throws(TokenError) -> IssuedToken {
        let now = clock.now()
        if let lastForced, now - lastForced < Self.forcedRefreshInterval {
            let wait = Self.forcedRefreshInterval - (now - lastForced)
            throw TokenError(
                .rateLimited, "a forced refresh of \(profile.name) was made less than \(Self.forcedRefreshInterval.components.seconds) s ago", retryAfter: wait)
        }
        lastForced = now
        let result = if let inFlight { await inFlight.value } else { await fetch() }
        return try result.get()
    }

    /// A token to use instead of `rejected`, which its resource server has just refused (a 401:
    /// revoked, or stale by its clock). The held token when it is already another one; otherwise
    /// the fetch under way, or a new one. So however many callers were refused the same token at
    /// once, one fetch replaces it; and a failing upstream's backoff holds as for `token()`.
    package func replacing(_ rejected: IssuedToken) async throws(TokenError) -> IssuedToken {
        if let token = current, token.value != rejected.value, clock.remaining(token) >= minValid { return token }
        return try await joinOrFetch()
    }

    /// The fetch under way, else the last failure while its backoff runs, else a new fetch: how
    /// `token()` and `replacing(_:)` get a token the cache does not hold.
    private func joinOrFetch() async throws(TokenError) -> IssuedToken {
        let result: Result<IssuedToken, TokenError>
        if let inFlight {
            result = await inFlight.value
        } else if let retryAt, clock.now() < retryAt, var error = lastError {
            error.retryAfter = retryAt - clock.now()
            throw error
        } else {
            result = await fetch()
        }
        return try result.get()
    }

    /// The profile's state.
    package func status() -> ProfileStatus {
        let servable = current.map { clock.remaining($0) >= minValid } ?? false
        let state: ProfileStatus.State
        switch (servable, inFlight != nil, lastError != nil) {
        case (true, true, _): state = .refreshing
        case (true, false, true): state = .degraded
        case (true, false, false): state = .ready
        case (false, _, _): state = lastError == nil ? .starting : .failing
        }
        return ProfileStatus(
            state: state, expiresAt: current?.expiresAt, lastError: lastError, keys: fetcher.chooser.snapshot(), restored: isRestored && current != nil)
    }

    // MARK: - Refreshing

    /// What the refresh loop is to do with a cache next.
    package enum RefreshStep: Sendable, Equatable {
        /// Look again at this time.
        case due(ContinuousClock.Instant)
        /// A fetch is under way; its end signals the loop.
        case fetching
        /// An idle variant whose token no longer serves: let it go.
        case idle
    }

    /// One step of the broker's refresh loop (`TokenBroker.run`), which keeps every cache fresh
    /// from one task: starts a fetch when one is due (at once for a cache with no token, at the
    /// scheduled refresh, or at the retry after a failure) and none is under way. A variant is
    /// refreshed ahead of expiry only
    /// when its token was handed out since it was obtained; otherwise it is left to run out, and
    /// then reported idle. Its first fetch, and any after a failure, come from requests.
    package func refreshStep(now: ContinuousClock.Instant) -> RefreshStep {
        if inFlight != nil { return .fetching }
        if variant != nil {
            guard let token = current, clock.remaining(token) >= minValid else {
                // Nothing to serve: a request fetches anew (after any backoff under way). A
                // variant just made for a request waits for that request's fetch.
                if let retryAt, retryAt > now { return .due(retryAt) }
                if !fetchEnded, now - made < Self.firstFetchGrace { return .due(made + Self.firstFetchGrace) }
                return .idle
            }
            let due = max(refreshAt ?? now, retryAt ?? now)
            if due > now { return .due(due) }
            guard held.withLockedValue({ $0.used }) else {
                // Unused since obtained: not refreshed; idle once it no longer serves.
                return .due(now + max(clock.remaining(token) - minValid, .milliseconds(1)))
            }
            _ = startFetch()
            return .fetching
        }
        let due: ContinuousClock.Instant
        if let token = current, clock.remaining(token) >= minValid {
            due = max(refreshAt ?? now, retryAt ?? now)
        } else {
            due = retryAt ?? now
        }
        guard due <= now else { return .due(due) }
        _ = startFetch()
        return .fetching
    }

    /// `kid` was just registered on the client (by rotation): if this cache holds that key, its
    /// last refusal is forgotten and a fetch is due now, which tries it first. A refusal there
    /// (the registration has not reached Maskinporten yet) falls back to the key that signs.
    package func keyRegistered(_ kid: String) {
        guard fetcher.chooser.forgetRefusal(of: kid) else { return }
        // A fetch under way may have signed with the old key: the one after it tries this one.
        if inFlight != nil {
            probeAfterFetch = true
            return
        }
        refreshAt = clock.now()
        wakeup.signal(changed: ObjectIdentifier(self))
    }

    // MARK: - Fetching

    /// Starts the one fetch that all callers share, and records its outcome before anyone
    /// waiting on it resumes.
    private func fetch() async -> Result<IssuedToken, TokenError> {
        await startFetch().value
    }

    /// Starts the fetch; its outcome is recorded, and the refresh loop woken, when it ends.
    private func startFetch() -> Task<Result<IssuedToken, TokenError>, Never> {
        let fetcher = self.fetcher
        let task = Task { () -> Result<IssuedToken, TokenError> in
            let result: Result<IssuedToken, TokenError>
            do throws(TokenError) {
                result = .success(try await fetcher.fetch())
            } catch {
                result = .failure(error)
            }
            return self.record(result)
        }
        inFlight = task
        return task
    }

    private func record(_ outcome: Result<IssuedToken, TokenError>) -> Result<IssuedToken, TokenError> {
        inFlight = nil
        fetchEnded = true
        defer { wakeup.signal(changed: ObjectIdentifier(self)) }
        var result = outcome
        if case .success(let token) = outcome, token.lifetime <= minValid + .seconds(1) {
            result = .failure(
                TokenError(
                    .malformed, endpoint: token.kind == .altinn ? .altinn : .maskinporten,
                    "the new token lives \(token.lifetime.components.seconds) s, not longer than min_valid_seconds (\(refresh.minValidSeconds) s)"))
        }
        switch result {
        case .success(let token):
            let first = current == nil
            current = token
            isRestored = false
            lastError = nil
            failures = 0
            retryAt = nil
            refreshAt = scheduleRefresh(token, first: first)
            // A newer key waiting to be accepted is tried at the next fetch after its probe time.
            if let probe = fetcher.chooser.nextProbe(), let scheduled = refreshAt, probe < scheduled {
                refreshAt = probe
            }
            if probeAfterFetch {
                probeAfterFetch = false
                refreshAt = clock.now()
            }
            // expires_at by gmtime_r: Foundation's ISO 8601 style maps ICU's time zone data into
            // the daemon, a megabyte resident for every host that logs at info.
            logger.info(
                "token obtained",
                metadata: [
                    "kind": "\(token.kind.rawValue)", "fingerprint": "\(token.fingerprint)",
                    "expires_at": "\(UTCTimestamp.format(secondsSince1970: Int(token.expiresAt.timeIntervalSince1970.rounded(.down))))",
                    "lifetime_seconds": "\(token.lifetime.components.seconds)",
                ])
        case .failure(let error) where error.stopped:
            logger.debug("token fetch stopped: the daemon is stopping")
        case .failure(let error):
            failures += 1
            lastError = error
            Counter(label: MetricName.refreshFailures, dimensions: [("profile", profile.name)]).increment()
            let usable = current.map { clock.remaining($0) - minValid }
            let delay = policy.delay(after: error, failures: failures, usable: usable)
            retryAt = clock.now() + delay
            // A failure is retried at `retryAt` even while the token in hand is far from its
            // refresh: a forced refresh or a replacement that failed (the TPM stopped answering,
            // say) would otherwise leave the profile degraded until then.
            refreshAt = nil
            let holding = usable.map { $0 > .zero } ?? false
            logger.log(
                level: holding ? .warning : .error, "token fetch failed",
                metadata: [
                    "error": "\(error)", "failures": "\(failures)", "retry_in_ms": "\(delay.milliseconds)",
                    "serving_cached_token": "\(holding)",
                ])
        }
        return result
    }

    /// When to refresh: after `at_fraction` of the lifetime, give or take 5 % of it, and always
    /// well before the token drops under `min_valid_seconds`. The first token's refresh is
    /// spread much wider, over half of `at_fraction` up to `at_fraction` + 5 %: every profile
    /// fetches its first token at start, and ±5 % alone would keep a thousand of them
    /// refreshing in the same few seconds for hours.
    private func scheduleRefresh(_ token: IssuedToken, first: Bool) -> ContinuousClock.Instant {
        token.obtainedInstant
            + Self.refreshDelay(lifetime: token.lifetime, atFraction: refresh.atFraction, minValid: minValid, random: Double.random(in: 0...1), first: first)
    }

    /// How long after obtaining a token of `lifetime` to refresh it; `random` in 0...1 picks the
    /// jitter (-5 % to +5 % of the lifetime; for a cache's first token, anywhere from half of
    /// `atFraction` to `atFraction` + 5 %) so that profiles and hosts do not refresh in lockstep.
    package static func refreshDelay(lifetime: Duration, atFraction: Double, minValid: Duration, random: Double, first: Bool = false) -> Duration {
        let usable = lifetime - minValid
        let target: Duration
        if first {
            target = lifetime * (atFraction / 2 + (atFraction / 2 + 0.05) * random)
        } else {
            target = lifetime * atFraction + lifetime * ((random - 0.5) / 10)
        }
        let latest = usable * 0.9
        return min(max(target, .milliseconds(100)), latest)
    }

    private func insufficient(_ token: IssuedToken, needed: Duration) -> TokenError {
        TokenError(
            .insufficientLifetime,
            "the newest token of \(profile.name) has \(clock.remaining(token).components.seconds) s left, less than the \(needed.components.seconds) s asked for; upstream issues tokens for \(token.lifetime.components.seconds) s"
        )
    }
}

extension Duration {
    /// Whole milliseconds.
    var milliseconds: Int64 {
        components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
    }
}
