package import BrokerConfig
import BrokerCrypto
package import BrokerUpstream
package import FoundationEssentials
package import Logging
import NIOConcurrencyHelpers

/// Which of a profile's keys signs. With one key (or `kid:` set) that key always does. With a
/// JWK Set the newest key signs once Maskinporten has accepted a grant signed with it; until
/// then the newest key it accepted keeps signing, and the newer one is tried again every
/// `probeInterval` (at the next fetch after that, which `TokenCache` schedules). So rotating by
/// hand is: add a key to the set, register it, nothing else.
///
/// What Maskinporten accepted is known only from its answers, so after a start or a reload the
/// newest key is tried first; a refusal costs one extra grant inside the same fetch, never a
/// failed answer to a client.
package final class KeyChooser: Sendable {
    private struct State {
        /// The kid Maskinporten last accepted a grant from.
        var accepted: String?
        /// When each key was last refused.
        var refused: [String: ContinuousClock.Instant] = [:]
    }

    /// The keys, oldest first.
    package let keys: [SigningKey]
    /// How long a refused key waits before it is tried again.
    package let probeInterval: Duration
    private let state = NIOLockedValueBox(State())
    private let clock: TokenClock
    private let logger: Logger

    /// A chooser among `keys` (oldest first).
    package init(keys: [SigningKey], probeInterval: Duration, clock: TokenClock = .system, logger: Logger) {
        self.clock = clock
        self.keys = keys
        self.probeInterval = probeInterval
        self.logger = logger
    }

    /// The keys to sign with, in order, for the next fetch: the newest key not refused within
    /// `probeInterval` first, then older ones down to the one accepted last (each tried only if
    /// the one before it was refused). Never empty.
    package func attempts() -> [SigningKey] {
        let now = clock.now()
        return state.withLockedValue { attemptOrder($0, now: now) }
    }

    private func attemptOrder(_ state: State, now: ContinuousClock.Instant) -> [SigningKey] {
        guard keys.count > 1 else { return keys }
        let acceptedIndex = state.accepted.flatMap { kid in keys.firstIndex { $0.kid == kid } }
        var order: [SigningKey] = []
        for index in keys.indices.reversed() {
            let key = keys[index]
            if index == acceptedIndex {
                order.append(key)
                break
            }
            if let refusedAt = state.refused[key.kid], now - refusedAt < probeInterval { continue }
            order.append(key)
        }
        // Every key refused lately and none accepted: try them all again, newest first.
        return order.isEmpty ? keys.reversed() : order
    }

    /// When a key newer than the accepted one should be tried again; nil when the newest key
    /// signs (or there is only one).
    package func nextProbe() -> ContinuousClock.Instant? {
        guard keys.count > 1, let newest = keys.last else { return nil }
        return state.withLockedValue { state in
            guard state.accepted != newest.kid else { return nil }
            return state.refused.values.max().map { $0 + probeInterval }
        }
    }

    /// Every key with what Maskinporten said of it, oldest first: what `/v1/profiles` shows.
    package func snapshot() -> [KeyStatus] {
        let now = clock.now()
        return state.withLockedValue { state in
            // The key that signs: the accepted one; before any answer, the one tried first.
            let signing = state.accepted ?? attemptOrder(state, now: now).first?.kid
            return keys.map { key in
                let verdict: KeyStatus.Verdict = key.kid == state.accepted ? .accepted : state.refused[key.kid] != nil ? .refused : .untried
                return KeyStatus(
                    kid: key.kid, bits: key.privateKey.bits, madeAt: key.madeAt, signs: key.kid == signing, verdict: verdict,
                    heldBy: key.privateKey.provider, device: key.privateKey.device)
            }
        }
    }

    /// Forgets that `kid` was refused, so that the next fetch tries it; false when no key of
    /// this chooser has that kid.
    @discardableResult
    package func forgetRefusal(of kid: String) -> Bool {
        guard keys.contains(where: { $0.kid == kid }) else { return false }
        state.withLockedValue { _ = $0.refused.removeValue(forKey: kid) }
        return true
    }

    /// Maskinporten accepted a grant signed with `key`.
    package func accepted(_ key: SigningKey) {
        let previous = state.withLockedValue { state -> String? in
            defer {
                state.accepted = key.kid
                state.refused[key.kid] = nil
            }
            return state.accepted
        }
        // A profile's only key has nothing to switch from.
        guard previous != key.kid, keys.count > 1 else { return }
        let newest = key.kid == keys.last?.kid
        logger.notice(
            "signing with key \(key.kid)",
            metadata: [
                "kid": "\(key.kid)", "previous_kid": "\(previous ?? "none")",
                "reason":
                    "\(newest ? "Maskinporten accepted a grant signed with it, and it is the newest key" : "Maskinporten accepted a grant signed with it; newer keys are refused")",
            ])
    }

    /// Maskinporten refused a grant signed with `key`; with `fallingBack`, an older key is
    /// tried next (otherwise the refusal is the fetch's failure, which the cache reports).
    package func refused(_ key: SigningKey, because error: TokenError, fallingBack: Bool) {
        let now = clock.now()
        let first = state.withLockedValue { state -> Bool in
            defer {
                state.refused[key.kid] = now
                if state.accepted == key.kid { state.accepted = nil }
            }
            return state.refused[key.kid] == nil
        }
        guard fallingBack else { return }
        logger.log(
            level: first ? .warning : .debug,
            "Maskinporten refused key \(key.kid) (not registered on the client yet?); signing with an older key, trying this one again in \(probeInterval.components.seconds) s",
            metadata: ["kid": "\(key.kid)", "error": "\(error)"])
    }
}

/// One key of a profile as the daemon knows it.
package struct KeyStatus: Sendable, Equatable {
    /// What Maskinporten said of a key.
    package enum Verdict: String, Sendable {
        /// It accepted the last grant signed with it (a profile's only key counts as accepted).
        case accepted
        /// It refused the last grant signed with it (not registered on the client?).
        case refused
        /// No grant has been signed with it since the daemon started or reloaded.
        case untried
    }

    /// The key's id.
    package var kid: String
    /// Its size.
    package var bits: Int
    /// When it was made, where the JWK records it.
    package var madeAt: Date?
    /// Whether it signs the profile's grants now.
    package var signs: Bool
    /// What Maskinporten said of it.
    package var verdict: Verdict
    /// The OpenSSL provider that holds it (`tpm2`), or nil for a key in the daemon's memory.
    package var heldBy: String? = nil
    /// The device the provider holds it in (`device:/dev/tpmrm0`).
    package var device: String? = nil

    /// Where the key lives, as `/v1/profiles` and the metrics say it: `memory` (read from a
    /// file), `tpm`, or another provider's name.
    package var location: String {
        switch heldBy {
        case nil: "memory"
        case "tpm2": "tpm"
        case let provider?: provider
        }
    }
}
