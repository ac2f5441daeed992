package import BrokerConfig
import BrokerPOSIX

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An `allow` list resolved to ids: who may use a profile (or a token issuer).
package struct AccessPolicy: Sendable, Equatable {
    /// User ids allowed, by `uids` and by `users` names.
    package var uids: Set<UInt32>
    /// Group ids allowed, by `groups` names; primary and supplementary groups count.
    package var gids: Set<UInt32>

    /// The daemon's own user, who (with root) may use everything: read once, not per request.
    static let ownUID: UInt32 = getuid()

    /// Resolves `list`; nil means no list: root and the daemon's own user only.
    package init(_ list: AccessList?) {
        let resolved = (list ?? AccessList()).resolved()
        self.uids = resolved.uids
        self.gids = resolved.gids
    }

    /// Whether `peer` may use what this policy guards.
    package func permits(_ peer: PeerCredentials) -> Bool {
        if peer.uid == 0 || peer.uid == Self.ownUID || uids.contains(peer.uid) { return true }
        if gids.isEmpty { return false }
        if gids.contains(peer.gid) { return true }
        return peer.supplementaryGroups().contains { gids.contains($0) }
    }
}
