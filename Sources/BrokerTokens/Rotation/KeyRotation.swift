package import BrokerConfig
import BrokerCrypto
import BrokerPOSIX
import BrokerUpstream
package import FoundationEssentials
package import Logging
import Metrics
import NIOConcurrencyHelpers
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Rotates the keys of profiles with `rotation:` through Digdir's self-service API: when the
/// newest key is older than `every` it makes a key (stored in the state directory), registers it
/// beside the client's other keys, waits until Maskinporten accepts a grant signed with it (the
/// profile's key chooser says so), and `retire_after` later removes the previous key it made
/// from the client. It never removes a key it did not make, and never the key that signs.
///
/// Every step is recorded (`RotationRecord`) before the call it leads to; each step first reads
/// what the API holds, so a step repeated after a crash does nothing twice. A failing step is
/// retried with the token fetches' backoff while the profile keeps signing with the key it has.
package final class KeyRotation: Service, Sendable {
    /// What `/v1/profiles` and the metrics show of a profile's rotation.
    package struct Status: Sendable, Equatable {
        /// What rotation is doing.
        package enum State: String, Sendable {
            /// Nothing to do until `nextRotation`.
            case waiting
            /// A new key is being registered, or waits for Maskinporten to accept it, or an old
            /// one for its retirement.
            case rotating
            /// The last step failed; it is retried with backoff (`error` says why).
            case failing
        }

        /// What rotation is doing.
        package var state: State = .waiting
        /// When the last new key was accepted.
        package var lastRotation: Date?
        /// When the next key is due to be made.
        package var nextRotation: Date?
        /// The key being rotated in, while one is.
        package var pendingKid: String?
        /// Failed steps in a row.
        package var failures = 0
        /// Why the last step failed.
        package var error: String?
        /// What the steps say rotation is doing; `state` shows it once no step is failing.
        package var settled: State = .waiting

        /// The steps' view of what rotation does: shown at once, unless a step is failing, which
        /// stays shown until a step succeeds (a retry under way is no success yet).
        mutating func settle(_ state: State) {
            settled = state
            if failures == 0 { self.state = state }
        }
    }

    private let broker: TokenBroker
    private let configuration: @Sendable () -> BrokerConfiguration
    private let reloadKeys: @Sendable (_ profile: String) -> Void
    private let policy: RetryPolicy
    private let logger: Logger
    private let statuses = NIOLockedValueBox<[String: Status]>([:])

    /// Rotation for the profiles of `configuration()` (read again at each step, so that a
    /// reload's settings apply); `reloadKeys` asks the daemon to load a profile's keys again.
    package init(
        broker: TokenBroker, configuration: @escaping @Sendable () -> BrokerConfiguration, policy: RetryPolicy = RetryPolicy(),
        logger: Logger, reloadKeys: @escaping @Sendable (_ profile: String) -> Void
    ) {
        self.broker = broker
        self.configuration = configuration
        self.reloadKeys = reloadKeys
        self.policy = policy
        self.logger = logger
    }

    /// The rotation status of `profile`, once rotation has looked at it.
    package func status(of profile: String) -> Status? {
        statuses.withLockedValue { $0[profile] }
    }

    package func run() async throws {
        await cancelWhenGracefulShutdown { await self.loop() }
    }

    /// One task for every rotating profile: each step is due at its own time; between steps the
    /// loop sleeps until the earliest is (at most a minute, so that a reload's new profile is
    /// seen).
    private func loop() async {
        var due: [String: ContinuousClock.Instant] = [:]
        while !Task.isCancelled {
            let profiles = configuration().profiles.filter { $0.rotation != nil }
            let clock = broker.clock
            var wake = clock.now() + .seconds(60)
            for profile in profiles {
                if let at = due[profile.name], at > clock.now() {
                    wake = min(wake, at)
                    continue
                }
                let wait = await attempt(profile)
                due[profile.name] = clock.now() + wait
                wake = min(wake, clock.now() + wait)
            }
            try? await clock.sleep(wake)
        }
    }

    /// One step for `profile`, and how long until the next.
    private func attempt(_ profile: Profile) async -> Duration {
        var logger = logger
        logger[metadataKey: "profile"] = "\(profile.name)"
        do {
            let wait = try await step(profile, logger: logger)
            update(profile.name) { status in
                status.failures = 0
                status.error = nil
                status.state = status.settled
            }
            return wait
        } catch {
            let tokenError = error as? TokenError ?? TokenError(.rejected, "\(error)")
            if tokenError.stopped { return .seconds(1) }
            let failures = (status(of: profile.name)?.failures ?? 0) + 1
            let wait = policy.delay(after: tokenError, failures: failures, usable: nil)
            update(profile.name) { status in
                status.state = .failing
                status.failures = failures
                status.error = tokenError.description
            }
            Counter(label: MetricName.keyRotationFailures, dimensions: [("profile", profile.name)]).increment()
            logger.error(
                "key rotation failed; the profile keeps signing with the key it has",
                metadata: ["error": "\(tokenError)", "retry_in_seconds": "\(wait.components.seconds)", "failures": "\(failures)"])
            return wait
        }
    }

    private func update(_ profile: String, _ change: (inout Status) -> Void) {
        statuses.withLockedValue { statuses in change(&statuses[profile, default: Status()]) }
    }

    // MARK: - Steps

    /// Does the next thing rotation has to do for `profile`, recording it first, and returns
    /// how long until the next step is due.
    private func step(_ profile: Profile, logger: Logger) async throws -> Duration {
        guard let rotation = profile.rotation, let cache = broker.cache(for: profile.name) else { return .seconds(5) }
        try Self.makeDirectory(for: rotation.stateFile)
        var record = try RotationRecord.read(rotation.stateFile, clientID: profile.clientID)
        let store = MadeKeys(rotation)
        let madeKeys = try store.list()
        // A key stored just before a crash, with no record yet, is taken up where it stopped;
        // a record of a key that never reached the keys file is dropped (it was never registered).
        for key in madeKeys where !record.made.contains(where: { $0.kid == key.kid }) {
            record.made.append(.init(kid: key.kid, madeAt: key.madeAt ?? broker.clock.date(), phase: .made))
        }
        record.made.removeAll { made in made.phase == .made && !madeKeys.contains { $0.kid == made.kid } }
        let now = broker.clock.date()
        update(profile.name) { $0.lastRotation = record.lastRotation }

        // 1. A key made and not yet registered is registered.
        if let pending = record.made.last(where: { $0.phase == .made || $0.phase == .registering }),
            let key = madeKeys.first(where: { $0.kid == pending.kid })
        {
            update(profile.name) {
                $0.settle(.rotating)
                $0.pendingKid = pending.kid
            }
            try await register(key, profile, rotation, &record, logger: logger)
            return .zero
        }
        // 2. A registered key waits for Maskinporten to accept a grant signed with it.
        if let index = record.made.lastIndex(where: { $0.phase == .registered }) {
            let kid = record.made[index].kid
            update(profile.name) {
                $0.settle(.rotating)
                $0.pendingKid = kid
            }
            guard await cache.status().keys.contains(where: { $0.kid == kid && $0.verdict == .accepted }) else { return .seconds(1) }
            record.made[index].phase = .accepted
            record.made[index].acceptedAt = now
            record.lastRotation = now
            try record.write(to: rotation.stateFile)
            update(profile.name) { $0.lastRotation = now }
            logger.notice("key rotation: Maskinporten accepted the new key", metadata: ["kid": "\(kid)"])
            return .zero
        }
        // 3. retire_after past the newest key's acceptance, the keys it made before go.
        if let newest = record.made.last, newest.phase == .accepted, let acceptedAt = newest.acceptedAt {
            let older = record.made.dropLast().filter { $0.phase != .made }.map(\.kid)
            if !older.isEmpty {
                let retireAt = acceptedAt.addingTimeInterval(TimeInterval(rotation.retireAfter))
                update(profile.name) {
                    $0.settle(.rotating)
                    $0.pendingKid = nil
                }
                guard now >= retireAt else { return .seconds(min(max(retireAt.timeIntervalSince(now), 0.1), 3600)) }
                try await retire(older, keeping: newest.kid, profile, rotation, &record, store: store, logger: logger)
                return .zero
            }
        }
        // 4. The newest key, once older than `every`, is followed by a new one.
        guard let newestKey = cache.credentials.keys.last else { return .seconds(3600) }
        var born = newestKey.madeAt ?? record.made.first(where: { $0.kid == newestKey.kid })?.madeAt ?? record.firstSeen[newestKey.kid]
        if born == nil {
            // A key that does not record when it was made is counted from now.
            record.firstSeen[newestKey.kid] = now
            try record.write(to: rotation.stateFile)
            born = now
        }
        let dueAt = born!.addingTimeInterval(TimeInterval(rotation.every))
        update(profile.name) {
            $0.settle(.waiting)
            $0.pendingKid = nil
            $0.nextRotation = dueAt
        }
        guard now >= dueAt else { return .seconds(min(max(dueAt.timeIntervalSince(now), 0.1), 3600)) }
        // In the TPM a signature takes its time: made on the thread grants signed there use.
        let key = try await DeviceSigning.run(for: rotation.tpm == nil ? nil : newestKey.privateKey) {
            try store.make(bits: max(2048, newestKey.privateKey.bits), now: now)
        }
        record.made.append(.init(kid: key.kid, madeAt: now, phase: .made))
        try record.write(to: rotation.stateFile)
        update(profile.name) {
            $0.settle(.rotating)
            $0.pendingKid = key.kid
        }
        logger.notice(
            "key rotation: made a new key",
            metadata: [
                "kid": "\(key.kid)", "previous_kid": "\(newestKey.kid)", "keys_file": "\(rotation.tpm?.directory ?? rotation.keysFile)",
                "location": "\(rotation.tpm == nil ? "memory" : "tpm")",
            ])
        return .zero
    }

    /// Registers `key` beside the client's other keys, unless the API already holds it (a
    /// repeat after a crash).
    private func register(_ key: MadeKeys.Made, _ profile: Profile, _ rotation: RotationSettings, _ record: inout RotationRecord, logger: Logger) async throws {
        let kid = key.kid
        let (upstream, api, token) = try await selfService(profile)
        let registered = try await explained(profile) { try await upstream.registeredKeys(api: api, clientID: profile.clientID, token: token) }
        if !registered.contains(where: { $0.kid == kid }) {
            guard registered.count < EncodedJwkFile.maximumKeys else {
                throw TokenError(
                    .rejected, endpoint: .selfService,
                    "client \(profile.clientID) already has \(registered.count) keys registered, Maskinporten's limit: remove one it no longer uses in Samarbeidsportalen; rotation tries again"
                )
            }
            try mark(kid, .registering, in: &record, rotation)
            var set = registered.map(Self.forRegistration)
            set.append(Self.forRegistration(key.publicKey))
            try await explained(profile) { try await upstream.registerKeys(set, api: api, clientID: profile.clientID, token: token) }
        }
        try mark(kid, .registered, in: &record, rotation)
        logger.notice("key rotation: registered the new key on the client", metadata: ["kid": "\(kid)", "client_id": "\(profile.clientID)"])
        // A cache that holds the key already (it was loaded after a restart, and refused) tries
        // it again now; otherwise the reload brings it in, and a new cache tries it first.
        await broker.cache(for: profile.name)?.keyRegistered(kid)
        reloadKeys(profile.name)
    }

    /// Removes `kids` (keys rotation made) from the client and from the keys file.
    private func retire(
        _ kids: [String], keeping newest: String, _ profile: Profile, _ rotation: RotationSettings, _ record: inout RotationRecord, store: MadeKeys,
        logger: Logger
    ) async throws {
        for kid in kids { try mark(kid, .retiring, in: &record, rotation) }
        let (upstream, api, token) = try await selfService(profile)
        let registered = try await explained(profile) { try await upstream.registeredKeys(api: api, clientID: profile.clientID, token: token) }
        // Never leave the client without the key that signs.
        guard registered.contains(where: { $0.kid == newest }) else {
            throw TokenError(
                .rejected, endpoint: .selfService,
                "the newest key \(newest) is no longer registered on client \(profile.clientID), so the previous one is kept: register \(newest) again, or remove rotation"
            )
        }
        let remaining = registered.filter { !kids.contains($0.kid ?? "") }
        if remaining.count != registered.count {
            try await explained(profile) {
                try await upstream.registerKeys(remaining.map(Self.forRegistration), api: api, clientID: profile.clientID, token: token)
            }
        }
        try store.remove(kids)
        record.made.removeAll { kids.contains($0.kid) }
        try record.write(to: rotation.stateFile)
        update(profile.name) { $0.pendingKid = nil }
        logger.notice("key rotation: removed the previous key from the client", metadata: ["kids": "\(kids.joined(separator: ","))", "kid": "\(newest)"])
        reloadKeys(profile.name)
    }

    private func mark(_ kid: String, _ phase: RotationRecord.Phase, in record: inout RotationRecord, _ rotation: RotationSettings) throws {
        guard let index = record.made.firstIndex(where: { $0.kid == kid }) else { return }
        record.made[index].phase = phase
        try record.write(to: rotation.stateFile)
    }

    /// The upstream client, the API's address and a token for it.
    private func selfService(_ profile: Profile) async throws -> (UpstreamClient, String, String) {
        guard let api = profile.environment.selfServiceAPI, let upstream = broker.upstream(for: profile.environment) else {
            throw TokenError(.rejected, "environment \(profile.environment.name) has no self_service_api")
        }
        do {
            return (upstream, api, try await broker.selfServiceToken(for: profile))
        } catch {
            var failure = error
            failure.reason =
                "no token for the self-service API (\(profile.rotation?.selfServiceProfile.map { "profile \($0)" } ?? "this profile's client with scopes idporten:dcr.read idporten:dcr.write")): "
                + error.reason
            throw failure
        }
    }

    /// A call to the API, its refusals named with their likely fix.
    private func explained<T>(_ profile: Profile, _ call: () async throws -> T) async throws(TokenError) -> T {
        do {
            return try await call()
        } catch {
            let error = error as? TokenError ?? TokenError(.malformed, endpoint: .selfService, "\(error)")
            var explained = error
            let by = profile.rotation?.selfServiceProfile.map { "profile \($0)'s client" } ?? "this profile's client"
            switch error.upstream?.status {
            case 400:
                let text = (error.upstream?.errorDescription ?? "").lowercased()
                explained.reason +=
                    text.containsText("many") || text.containsText("5")
                    ? ": the client holds too many keys; remove one it no longer uses in Samarbeidsportalen (at most 5)"
                    : ": the API refused the key set"
            case 401:
                explained.reason += ": the API did not accept the token of \(by); check that it has the scopes idporten:dcr.read and idporten:dcr.write"
            case 403:
                explained.reason +=
                    ": \(by) may not manage client \(profile.clientID); give it the scopes idporten:dcr.read and idporten:dcr.write, as the organisation that owns the client"
            case 404:
                explained.reason += ": the API knows no client \(profile.clientID); check client_id"
            default:
                break
            }
            throw explained
        }
    }

    /// A key as the API takes it: the public part, marked for signing.
    static func forRegistration(_ key: JWK) -> JWK {
        var key = key.publicPart
        key.use = "sig"
        return key
    }

    /// The state directory, made (0700) if it does not exist yet.
    static func makeDirectory(for file: String) throws {
        let directory = PathText.directory(of: file)
        var info = stat()
        if stat(directory, &info) == 0 { return }
        guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
            throw EncodedJwkFile.Failure(
                "the state directory \(directory) cannot be made: \(String(cString: strerror(errno))); set state_directory, or StateDirectory= in the unit")
        }
    }
}
