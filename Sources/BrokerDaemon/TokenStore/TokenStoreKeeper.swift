package import BrokerPOSIX
package import BrokerTokens
package import Logging
import Metrics
package import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// Keeps the daemon's tokens through restarts without writing them to a file system: one sealed
/// memfd named `tokens` in systemd's file descriptor store (`FileDescriptorStoreMax=`), written
/// again when a token is obtained (at most once a second) and once more as the daemon stops.
/// systemd hands it back in `$LISTEN_FDS` at the next start, and `read` turns it into the tokens
/// the caches start with. Outside systemd, or with `FileDescriptorStoreMax=0`, it does nothing.
package final class TokenStoreKeeper: Service, Sendable {
    /// The store entry's name (`FDNAME=`, and its name in `$LISTEN_FDNAMES`).
    package static let name = "tokens"

    private let broker: TokenBroker
    private let notifier: SystemdNotifier
    private let logger: Logger
    /// How often the caches are looked at for new tokens.
    private let interval: Duration

    package init(broker: TokenBroker, notifier: SystemdNotifier, interval: Duration = .seconds(1), logger: Logger) {
        self.broker = broker
        self.notifier = notifier
        self.interval = interval
        self.logger = logger
    }

    /// Whether there is a store to keep tokens in: a service manager, and a store not switched
    /// off (systemd 254 and later say its size in `$FDSTORE`; 252 says nothing, and the unit's
    /// `FileDescriptorStoreMax=` is trusted).
    package var isEnabled: Bool {
        notifier.isEnabled && notifier.descriptorStoreMax != 0
    }

    package func run() async throws {
        guard isEnabled else {
            // Nothing to keep; the group ends with the others.
            try? await gracefulShutdown()
            return
        }
        // Nothing written yet by this process: the first tokens held (restored or fetched) are.
        var written: [String] = []
        while !Task.isCancelled {
            do {
                let interval = self.interval
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            } catch {
                break
            }
            if Task.isShuttingDownGracefully { break }
            let now = signature()
            if now != written {
                write()
                written = now
            }
        }
        // The tokens as the daemon stops, for the process systemd starts next.
        write()
    }

    /// Which tokens are held, by fingerprint: a change means a new file.
    private func signature() -> [String] {
        broker.everyCache().compactMap { $0.heldToken()?.fingerprint }.sorted()
    }

    /// Replaces the stored file with one holding every token held now.
    private func write() {
        let tokens = broker.storedTokens()
        do {
            let fd = try SealedMemoryFile.make(name: Self.name, contents: TokenStoreFile.encode(tokens))
            defer { close(fd) }
            notifier.removeStoredDescriptors(name: Self.name)
            if !notifier.storeDescriptor(fd, name: Self.name) {
                logger.warning(
                    "the tokens could not be handed to systemd's file descriptor store", metadata: ["hint": "is FileDescriptorStoreMax= set in the unit?"])
            }
        } catch {
            logger.warning("the tokens could not be kept for the next start", metadata: ["error": "\(error)"])
        }
    }

    /// The tokens among `passed` (systemd's `tokens` entries, each closed here): none, with one
    /// warning, when the entry is not a sealed store file of this version.
    package static func read(_ passed: [ListenFDs.Passed], logger: Logger) -> [StoredToken] {
        let entries = passed.filter { $0.name == name }
        defer { for entry in entries { close(entry.fd) } }
        // Only one is kept; more means a store from a daemon that did not remove its last one.
        guard let entry = entries.last else { return [] }
        let contents: [UInt8]
        switch SealedMemoryFile.read(entry.fd, limit: TokenStoreFile.maximumBytes) {
        case .success(let read): contents = read
        case .failure(let refusal):
            logger.warning("the tokens kept by systemd were not read; starting without them", metadata: ["fd": "\(entry.fd)", "reason": "\(refusal)"])
            return []
        }
        switch TokenStoreFile.decode(contents) {
        case .success(let tokens): return tokens
        case .failure(let refusal):
            logger.warning("the tokens kept by systemd were not read; starting without them", metadata: ["fd": "\(entry.fd)", "reason": "\(refusal)"])
            return []
        }
    }

    /// The one line that says what was restored and what was discarded, and why; and the counts
    /// as metrics.
    package static func report(_ restoration: TokenRestoration, logger: Logger) {
        guard !restoration.isEmpty else { return }
        func named(_ outcome: TokenRestoration.Outcome) -> String {
            outcome.variant.map { "\(outcome.profile) (\($0))" } ?? outcome.profile
        }
        var metadata: Logger.Metadata = ["restored": "\(restoration.restored.count)"]
        if !restoration.restored.isEmpty {
            metadata["profiles"] = "\(restoration.restored.map(named).joined(separator: ", "))"
        }
        if !restoration.discarded.isEmpty {
            metadata["discarded"] = "\(restoration.discarded.map { "\(named($0)): \($0.reason?.rawValue ?? "?")" }.joined(separator: ", "))"
        }
        logger.notice("tokens restored from systemd's file descriptor store", metadata: metadata)
        Counter(label: MetricName.tokensRestored).increment(by: restoration.restored.count)
        for (reason, count) in restoration.discardedByReason {
            Counter(label: MetricName.tokensDiscarded, dimensions: [("reason", reason.rawValue)]).increment(by: count)
        }
    }
}
