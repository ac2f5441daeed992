package import BrokerConfig
import BrokerCrypto
import BrokerPOSIX
package import BrokerUpstream
package import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// Every profile's token cache, kept fresh together as one service, and replaced profile by
/// profile on reload: a profile whose settings and key did not change keeps its cache and token.
/// It owns the upstream HTTP clients (one per trust setting), which the ID-porten exchange shares.
package final class TokenBroker: Service, Sendable {
    /// What a reload changed.
    package struct Changes: Sendable, Equatable {
        /// Profiles whose caches were kept.
        package var kept: [String] = []
        /// Profiles new or changed, with new caches.
        package var started: [String] = []
        /// Profiles gone.
        package var stopped: [String] = []
    }

    private struct Entry {
        var cache: TokenCache
        /// SHA-256 of everything that decides how the profile's tokens are fetched.
        var identity: [UInt8]
        /// The identity without the keys: entries that differ only in keys fetch the same tokens.
        var tokenIdentity: [UInt8]
        /// The profile's variants, when it has `delegation:`.
        var variants: VariantCaches?
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var upstreams: [UpstreamClient.Setup: UpstreamClient] = [:]
        var idPorten: IDPortenExchanger?
        /// Counts the changes to `entries`, so that the refresh loop knows to look at them again.
        var generation = 0
    }

    private let state = NIOLockedValueBox(State())
    private let wakeup: RefreshWakeup
    /// Happens when every cache made at start has ended its first fetch, well or not.
    private let started = OneTimeEvent()
    private let policy: RetryPolicy
    private let timeouts: UpstreamClient.Timeouts
    /// What schedules, backoff and expiry go by (the system's, or a test's virtual time).
    package let clock: TokenClock
    private let logger: Logger

    /// What was done with the tokens kept through a restart (empty when none were passed in).
    package var restoration: TokenRestoration { restored.withLockedValue { $0 } }
    private let restored = NIOLockedValueBox(TokenRestoration())

    /// Builds a cache for every profile of `configuration` whose credentials are given. Profiles
    /// sharing a `ca_file` share one HTTP client. Tokens in `restoring` (kept through a restart)
    /// are held at once by the caches of the profiles that would fetch the same tokens.
    package init(
        configuration: BrokerConfiguration,
        credentials: [String: SigningCredentials],
        restoring: [StoredToken] = [],
        policy: RetryPolicy = RetryPolicy(),
        timeouts: UpstreamClient.Timeouts = UpstreamClient.Timeouts(),
        clock: TokenClock = .system,
        logger: Logger
    ) throws {
        self.clock = clock
        self.policy = policy
        self.timeouts = timeouts
        self.logger = logger
        // Each fetch's end signals the wakeup with its cache: the first fetches are counted off
        // the same signal.
        let starting = NIOLockedValueBox<Set<ObjectIdentifier>?>(nil)
        let started = self.started
        wakeup = RefreshWakeup { changed in
            let done = starting.withLockedValue { starting -> Bool in
                guard let changed, starting != nil, starting!.remove(changed) != nil else { return false }
                return starting!.isEmpty
            }
            if done { started.signal() }
        }
        var restoration = TokenRestoration()
        _ = try apply(configuration: configuration, credentials: credentials, restoring: restoring, restoration: &restoration)
        self.restored.withLockedValue { $0 = restoration }
        let caches = Set(state.withLockedValue { $0.entries.values.map { ObjectIdentifier($0.cache) } })
        starting.withLockedValue { $0 = caches }
        if caches.isEmpty { started.signal() }
        // A restored cache has no first fetch to wait for.
        for cache in state.withLockedValue({ $0.entries.values.map(\.cache) }) where restoration.restoredCaches.contains(ObjectIdentifier(cache)) {
            wakeup.signal(changed: ObjectIdentifier(cache))
        }
    }

    /// Returns when every profile configured at start has ended its first fetch (true), or
    /// after `limit` (false): readiness, signalled by the fetches themselves.
    package func firstFetchesEnded(within limit: Duration) async -> Bool {
        await started.wait(within: limit)
    }

    /// The cache of `profile`.
    package func cache(for profile: String) -> TokenCache? {
        state.withLockedValue { $0.entries[profile]?.cache }
    }

    /// The cache of `variant` of `profile`, made on first use (nil: no such profile running, or
    /// it has no `delegation:`). The variant must have been checked against the profile's
    /// `delegation:` (`TokenVariant.choose`).
    package func cache(for profile: String, variant: TokenVariant) -> TokenCache? {
        if variant.isBase { return cache(for: profile) }
        guard let variants = state.withLockedValue({ $0.entries[profile]?.variants }) else { return nil }
        let (cache, made, evicted) = variants.cache(for: variant)
        if made || evicted != nil {
            // The refresh loop takes up the new cache (and drops the evicted one).
            state.withLockedValue { $0.generation += 1 }
            wakeup.signal()
        }
        return cache
    }

    /// How many variants of `profile` are cached.
    package func variantCount(of profile: String) -> Int {
        state.withLockedValue { $0.entries[profile]?.variants }?.count ?? 0
    }

    /// Every cache, by profile name.
    package var caches: [String: TokenCache] {
        state.withLockedValue { $0.entries.mapValues(\.cache) }
    }

    /// Every cache: the profiles' own and their variants'.
    package func everyCache() -> [TokenCache] {
        state.withLockedValue { $0.entries.values.flatMap { [$0.cache] + ($0.variants?.caches ?? []) } }
    }

    /// The upstream client for `environment`'s trust and proxy settings, once a profile there
    /// is running.
    package func upstream(for environment: MaskinportenEnvironment) -> UpstreamClient? {
        state.withLockedValue { $0.upstreams[environment.upstreamSetup] }
    }

    /// A Maskinporten token for Digdir's self-service API, to manage `profile`'s client: from
    /// `self_service_profile`'s cache when one is named, else fetched for the profile's own
    /// client and keys with the self-service scopes (not cached: rotation asks a few times a year).
    package func selfServiceToken(for profile: Profile) async throws(TokenError) -> String {
        if let name = profile.rotation?.selfServiceProfile {
            guard let cache = cache(for: name) else {
                throw TokenError(.rejected, "self_service_profile \(name) is not running (its key did not load?)")
            }
            return try await cache.token().value
        }
        guard let cache = cache(for: profile.name), let upstream = upstream(for: profile.environment) else {
            throw TokenError(.rejected, "profile \(profile.name) is not running")
        }
        var admin = profile
        admin.scopes = RotationSettings.selfServiceScopes
        admin.exchange = .none
        admin.resource = nil
        admin.consumerOrg = nil
        admin.systemUserOrg = nil
        admin.systemUserExternalRef = nil
        let fetcher = TokenFetcher(builder: GrantBuilder(profile: admin, credentials: cache.credentials), upstream: upstream, clock: clock, logger: logger)
        return try await fetcher.fetch().value
    }

    /// The ID-porten exchange, when the configuration enables it.
    package var idPorten: IDPortenExchanger? {
        state.withLockedValue { $0.idPorten }
    }

    // MARK: - Running

    /// Fetches every profile's first token and keeps them fresh until graceful shutdown.
    ///
    /// One task keeps every profile fresh: it starts the fetches that are due, then sleeps until
    /// the next one is, or until a fetch ends or a reload adds profiles. (A task per profile
    /// cost 4.5 KiB of task stack each: `valgrind --tool=massif` at 1,000 profiles.)
    package func run() async throws {
        await cancelWhenGracefulShutdown { await self.refreshLoop() }
        await shutdown()
    }

    private func refreshLoop() async {
        // Every cache's next due time as last reported (nil: a fetch is under way, whose end
        // signals). A wake asks only the caches that signalled or are due, so a thousand
        // profiles do not cost a thousand actor calls per refresh.
        var schedule: [ObjectIdentifier: (cache: TokenCache, due: ContinuousClock.Instant?)] = [:]
        var generation = -1
        while !Task.isCancelled {
            let changed = wakeup.takeChanged()
            let now = clock.now()
            var ask: [TokenCache] = []
            let current = state.withLockedValue { state -> (generation: Int, caches: [TokenCache])? in
                state.generation == generation ? nil : (state.generation, state.entries.values.flatMap { [$0.cache] + ($0.variants?.caches ?? []) })
            }
            if let current {
                generation = current.generation
                let previous = schedule
                schedule = [:]
                for cache in current.caches {
                    let id = ObjectIdentifier(cache)
                    schedule[id] = previous[id] ?? (cache, now)
                }
            }
            for (id, entry) in schedule where changed.contains(id) || entry.due.map({ $0 <= now }) ?? false {
                ask.append(entry.cache)
            }
            for cache in ask {
                switch await cache.refreshStep(now: now) {
                case .due(let instant): schedule[ObjectIdentifier(cache)]?.due = instant
                case .fetching: schedule[ObjectIdentifier(cache)]?.due = nil
                case .idle:
                    // An idle variant whose token ran out: let it go.
                    schedule[ObjectIdentifier(cache)] = nil
                    state.withLockedValue { $0.entries[cache.profile.name]?.variants }?.remove(cache)
                }
            }
            // Look again within a minute at most.
            var next = now + .seconds(60)
            for entry in schedule.values {
                if let due = entry.due, due < next { next = due }
            }
            await wakeup.wait(until: next, clock: clock)
        }
    }

    /// Closes the upstream connections.
    package func shutdown() async {
        let upstreams = state.withLockedValue { Array($0.upstreams.values) }
        for upstream in upstreams {
            do { try await upstream.shutdown() } catch { logger.debug("upstream client shutdown", metadata: ["error": "\(error)"]) }
        }
    }

    // MARK: - Reloading

    /// Brings the caches in line with a new configuration: unchanged profiles keep their caches
    /// (and tokens), changed and new ones get new caches, removed ones stop. The ID-porten
    /// exchange keeps its cache while its environment stays the same.
    ///
    /// - Throws: `ConfigError` for a `ca_file` that cannot be used; nothing is changed then.
    @discardableResult
    package func apply(configuration: BrokerConfiguration, credentials: [String: SigningCredentials]) throws -> Changes {
        var restoration = TokenRestoration()
        return try apply(configuration: configuration, credentials: credentials, restoring: [], restoration: &restoration)
    }

    private func apply(
        configuration: BrokerConfiguration, credentials: [String: SigningCredentials], restoring: [StoredToken], restoration: inout TokenRestoration
    ) throws -> Changes {
        // Build everything that can fail before touching the running state.
        var upstreams = state.withLockedValue { $0.upstreams }
        let timeouts = self.timeouts
        let logger = self.logger
        func client(for environment: MaskinportenEnvironment) throws -> UpstreamClient {
            let setup = environment.upstreamSetup
            if let upstream = upstreams[setup] { return upstream }
            do {
                let upstream = try UpstreamClient(setup, timeouts: timeouts, logger: logger)
                upstreams[setup] = upstream
                return upstream
            } catch {
                throw ConfigError(
                    .invalidValue, file: configuration.file, keyPath: "environments.\(environment.name).ca_file",
                    "\(environment.caFile ?? "") is not a readable PEM certificate file: \(error)")
            }
        }
        var planned: [String: (identity: [UInt8], tokenIdentity: [UInt8], make: (IssuedToken?) -> (TokenCache, VariantCaches?))] = [:]
        var kept = Dictionary(grouping: restoring, by: \.profile)
        for profile in configuration.profiles {
            guard let credentials = credentials[profile.name] else { continue }
            let (restoredBase, restoredVariants) = restoration.take(
                kept.removeValue(forKey: profile.name) ?? [], for: profile, refresh: configuration.refresh, clock: clock)
            let upstream = try client(for: profile.environment)
            let refresh = configuration.refresh
            let policy = self.policy
            let wakeup = self.wakeup
            let clock = self.clock
            planned[profile.name] = (
                Self.identity(profile, credentials, refresh), Self.tokenIdentity(profile, refresh),
                { carried in
                    let fetcher = TokenFetcher(
                        builder: GrantBuilder(profile: profile, credentials: credentials), upstream: upstream,
                        keyProbe: .seconds(refresh.keyProbeSeconds), clock: clock, logger: logger)
                    let cache = TokenCache(
                        fetcher: fetcher, refresh: refresh, policy: policy, wakeup: wakeup, carrying: carried, restoring: restoredBase, clock: clock,
                        logger: logger)
                    let variants = profile.delegation.map { delegation in
                        VariantCaches(limit: delegation.maxVariants) { variant, restored in
                            TokenCache(
                                fetcher: TokenFetcher(
                                    builder: GrantBuilder(profile: variant.applied(to: profile), credentials: credentials), upstream: upstream,
                                    chooser: fetcher.chooser, clock: clock),
                                refresh: refresh, policy: policy, wakeup: wakeup, restoring: restored, variant: variant, clock: clock, logger: logger)
                        }
                    }
                    for (variant, token) in restoredVariants { _ = variants?.restore(variant, token: token) }
                    return (cache, variants)
                }
            )
        }
        for token in kept.values.joined() { restoration.discard(token, because: .profileGone) }
        let exchange = try configuration.idPortenExchange.map { settings in (settings, try client(for: settings.environment)) }
        let changes = state.withLockedValue { state in
            var changes = Changes()
            if let (settings, upstream) = exchange {
                if state.idPorten?.settings.environment != settings.environment {
                    state.idPorten = IDPortenExchanger(settings: settings, upstream: upstream, minValidSeconds: configuration.refresh.minValidSeconds)
                }
            } else {
                state.idPorten = nil
            }
            // A profile whose keys alone changed (a rotation, a key file replaced) keeps handing
            // out its token while the new cache fetches with the new keys: the token is as good
            // whichever key signed the grant for it.
            var carried: [String: IssuedToken] = [:]
            for (name, entry) in state.entries where planned[name]?.identity != entry.identity {
                if planned[name]?.tokenIdentity == entry.tokenIdentity { carried[name] = entry.cache.heldToken() }
                state.entries[name] = nil
                if planned[name] == nil { changes.stopped.append(name) }
            }
            for (name, plan) in planned {
                if state.entries[name] != nil {
                    changes.kept.append(name)
                    continue
                }
                let (cache, variants) = plan.make(carried[name])
                if restoration.restored.contains(where: { $0.profile == name && $0.variant == nil }) {
                    restoration.restoredCaches.insert(ObjectIdentifier(cache))
                }
                state.entries[name] = Entry(cache: cache, identity: plan.identity, tokenIdentity: plan.tokenIdentity, variants: variants)
                changes.started.append(name)
            }
            state.upstreams = upstreams
            if !changes.started.isEmpty || !changes.stopped.isEmpty { state.generation += 1 }
            changes.kept.sort()
            changes.started.sort()
            changes.stopped.sort()
            return changes
        }
        // New caches fetch their first token now, not at the refresh loop's next wake.
        if !changes.started.isEmpty { wakeup.signal() }
        return changes
    }

    /// What decides which tokens a profile gets: its settings but not its keys or allow list.
    /// Kept as a digest, as `identity` is, not as its text: the text (the whole profile printed)
    /// is a kilobyte and more, held for as long as the profile is served.
    static func tokenIdentity(_ profile: Profile, _ refresh: RefreshSettings) -> [UInt8] {
        var fetching = profile
        fetching.allow = nil
        // The same tokens whichever way they travel: a changed proxy carries the token too.
        fetching.environment.proxy = .direct
        return Digest.sha256("\(fetching)|\(refresh)".utf8)
    }

    /// Everything that decides how a profile's tokens are fetched, its keys too; access lists
    /// are left out, so changing who may use a profile keeps its token.
    static func identity(_ profile: Profile, _ credentials: SigningCredentials, _ refresh: RefreshSettings) -> [UInt8] {
        var fetching = profile
        fetching.allow = nil
        let publicKey = (try? credentials.privateKey.publicKey.jwk().n) ?? ""
        let chain = credentials.certificateChain.map { $0.map { Digest.fingerprint(Base64.standardEncoded($0.der)) }.joined(separator: ",") } ?? ""
        // Every key of a set: adding one is a change (the new key is tried), as removing one is.
        let keys = credentials.keys.map { key in "\(key.kid):\(key.algorithm):\(Digest.fingerprint((try? key.privateKey.publicKey.jwk().n) ?? ""))" }
        let text =
            "\(fetching)|\(refresh)|\(profile.environment.proxy.credentialsFingerprint)|\(credentials.kid ?? "")|\(credentials.algorithm)|\(Digest.fingerprint(publicKey))|\(chain)|\(keys.joined(separator: ","))"
        return Digest.sha256(text.utf8)
    }
}
