import BrokerConfig
package import BrokerPOSIX
import BrokerTokens
package import Logging
import NIOConcurrencyHelpers
import ServiceLifecycle

/// The audit trail: who was handed which token, and who was refused.
///
/// Every (token, peer process) pair is audited in full at its first hand-out. Repeats are
/// folded: the thousandth hand-out of the same token to the same process adds one to a count,
/// and every `audit.summary_interval_seconds` (and at shutdown) each pair with repeats gets one
/// count line. So a client that asks on every call costs the audit a hash lookup, not a line:
/// no timestamp, no `/proc` read, no allocation. Denials are folded the same way, by profile and
/// process, so that a misconfigured client cannot flood the journal.
///
/// The exact rule (docs/logs-and-audit.md, "The audit rule"):
/// - a pair is the token's fingerprint (for denials: the name asked for) with the peer's pid,
///   uid and gid, as `SO_PEERCRED` gave them;
/// - a pair is forgotten once a whole interval passes without a hand-out to it, and its next
///   hand-out is audited in full again;
/// - at most `maximumPairs` pairs are remembered; beyond that every hand-out to a new pair gets
///   a full line (more lines, never fewer);
/// - a line the sink cannot take is not remembered as written: with `on_overflow: drop` the
///   next hand-out tries a full line again, with `refuse` no token is handed out; a count line
///   that cannot be written keeps its count for the next interval.
///
/// Lines go through `LineLogHandler.line`, the one serialiser of log lines, straight into the
/// sink: the auditor must know whether its line was taken, which a swift-log call cannot say.
package final class Auditor: Service, Sendable {
    /// What a line records.
    package enum Kind: UInt8, Sendable {
        /// A profile's token.
        case token
        /// A Platform Access Token.
        case platformAccessToken
        /// An ID-porten token exchanged for an Altinn token.
        case idPortenExchange
        /// A request refused by the allow list.
        case denied

        var message: String {
            switch self {
            case .token: "token handed out"
            case .platformAccessToken: "platform access token handed out"
            case .idPortenExchange: "ID-porten token exchanged"
            case .denied: "access denied"
            }
        }

        var level: Logger.Level { self == .denied ? .notice : .info }
    }

    /// Pairs remembered at most: 10,000 pairs of about 200 bytes each are 2 MB at worst.
    package static let maximumPairs = 10_000

    private struct PairKey: Hashable {
        var kind: Kind
        /// The token's fingerprint; for denials, the name asked for.
        var subject: String
        var pid: Int32
        var uid: UInt32
        var gid: UInt32
    }

    private struct Pair {
        var name: String
        var variant: TokenVariant?
        var executable: String?
        /// Hand-outs since the last count line.
        var repeats: UInt64 = 0
        /// Used since the last summary; a pair idle for a whole interval is forgotten.
        var active = true
    }

    let output: LineLogHandler.Output
    let level: Logger.Level
    private let interval: @Sendable () -> Int
    private let pairs = NIOLockedValueBox([PairKey: Pair]())

    /// An auditor writing into `output`'s sink; audit lines are info (hand-outs) and notice
    /// (denials), written when `level` lets them through. `interval` is read at each summary:
    /// `audit.summary_interval_seconds` of the configuration in force.
    package init(output: LineLogHandler.Output, level: Logger.Level, interval: @escaping @Sendable () -> Int) {
        self.output = output
        self.level = level
        self.interval = interval
    }

    /// Lines the sink has dropped, by stream (for the metrics).
    package var drops: LineSink.Drops { output.sink.drops }

    // MARK: - Recording

    /// Records that `token` of `name` is handed to `peer`. False: it must not be handed out
    /// (`overflow` is refuse and the audit trail cannot take lines now).
    /// `variant` is the delegation a variant's token carries, named in the line
    /// (`system_user_org=...`) only when one is written.
    func handOut(
        _ kind: Kind, name: String, variant: TokenVariant? = nil, token: IssuedToken, expiresAt: String? = nil, peer: PeerCredentials,
        overflow: AuditSettings.Overflow
    ) -> Bool {
        guard level <= kind.level else { return true }
        if overflow == .refuse && output.sink.isRefusingAudit { return false }
        return record(
            PairKey(kind: kind, subject: token.fingerprint, pid: peer.pid, uid: peer.uid, gid: peer.gid), name: name, variant: variant,
            fingerprint: token.fingerprint, expiresAt: expiresAt, peer: peer)
            || overflow == .drop
    }

    /// Records that `peer` was refused `name`.
    func denied(_ name: String, peer: PeerCredentials) {
        guard level <= Kind.denied.level else { return }
        _ = record(
            PairKey(kind: .denied, subject: name, pid: peer.pid, uid: peer.uid, gid: peer.gid), name: name, variant: nil, fingerprint: nil, expiresAt: nil,
            peer: peer)
    }

    /// A repeat is counted; a first time is written in full. False when its line was dropped.
    private func record(_ key: PairKey, name: String, variant: TokenVariant?, fingerprint: String?, expiresAt: String?, peer: PeerCredentials) -> Bool {
        let repeated = pairs.withLockedValue { pairs in
            guard let index = pairs.index(forKey: key) else { return false }
            pairs.values[index].repeats += 1
            pairs.values[index].active = true
            return true
        }
        if repeated { return true }
        let executable = peer.executable()
        var metadata = Self.metadata(name: name, variant: variant, peer: peer, executable: executable)
        if let fingerprint { metadata["fingerprint"] = "\(fingerprint)" }
        if let expiresAt { metadata["expires_at"] = "\(expiresAt)" }
        let line = LineLogHandler.line(level: key.kind.level, message: key.kind.message, metadata: metadata, format: output.format)
        guard line.withUnsafeBufferPointer({ output.sink.append(bytes: $0, stream: .audit) }) else { return false }
        pairs.withLockedValue { pairs in
            if pairs.count < Self.maximumPairs, pairs[key] == nil {
                pairs[key] = Pair(name: name, variant: variant, executable: executable)
            }
        }
        return true
    }

    static func metadata(name: String, variant: TokenVariant?, peer: PeerCredentials, executable: String?) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["audit": "true", "profile": "\(name)", "pid": "\(peer.pid)", "uid": "\(peer.uid)", "gid": "\(peer.gid)"]
        if let variant { metadata["variant"] = "\(variant.auditName)" }
        if let executable { metadata["exe"] = "\(executable)" }
        return metadata
    }

    // MARK: - Count lines

    /// Writes the count lines every interval, and once more when the daemon stops (after the
    /// socket server, which comes later in the service group).
    package func run() async throws {
        while true {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(self.interval())) }
            } catch {
                break
            }
            summarise()
        }
        summarise()
    }

    /// One count line per pair with repeats since the last; forgets pairs idle for an interval.
    func summarise() {
        let due = pairs.withLockedValue { pairs -> [(PairKey, Pair)] in
            let due = pairs.filter { $0.value.repeats > 0 }.map { ($0.key, $0.value) }
            pairs = pairs.compactMapValues { pair in
                guard pair.active else { return nil }
                var kept = pair
                kept.repeats = 0
                kept.active = false
                return kept
            }
            return due
        }
        for (key, pair) in due.sorted(by: { ($0.0.pid, $0.0.subject) < ($1.0.pid, $1.0.subject) }) {
            var metadata = Self.metadata(
                name: pair.name, variant: pair.variant, peer: PeerCredentials(pid: key.pid, uid: key.uid, gid: key.gid), executable: pair.executable)
            if key.kind != .denied { metadata["fingerprint"] = "\(key.subject)" }
            metadata["count"] = "\(pair.repeats)"
            let line = LineLogHandler.line(level: key.kind.level, message: key.kind.message + " again", metadata: metadata, format: output.format)
            if !line.withUnsafeBufferPointer({ output.sink.append(bytes: $0, stream: .audit) }) {
                // Kept for the next interval: a count is never lost to a full buffer.
                pairs.withLockedValue { pairs in
                    if let index = pairs.index(forKey: key) {
                        pairs.values[index].repeats += pair.repeats
                        pairs.values[index].active = true
                    } else {
                        var kept = pair
                        kept.active = true
                        pairs[key] = kept
                    }
                }
            }
        }
    }
}
