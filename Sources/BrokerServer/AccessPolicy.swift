public import BrokerCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An `allow` list resolved to ids: who may use a profile (or a token issuer).
public struct AccessPolicy: Sendable, Equatable {
    /// User ids allowed, by `uids` and by `users` names.
    public var uids: Set<UInt32>
    /// Group ids allowed, by `groups` names; primary and supplementary groups count.
    public var gids: Set<UInt32>
    /// Names in the list that do not exist on this host (logged at load).
    public var unknownNames: [String]

    /// The daemon's own user, who (with root) may use everything: read once, not per request.
    static let ownUID: UInt32 = getuid()

    /// Resolves `list`; nil means no list: root and the daemon's own user only.
    public init(_ list: AccessList?) {
        var uids = Set(list?.uids ?? [])
        var gids: Set<UInt32> = []
        var unknown: [String] = []
        for name in list?.users ?? [] {
            if let uid = Self.uid(of: name) { uids.insert(uid) } else { unknown.append("user \(name)") }
        }
        for name in list?.groups ?? [] {
            if let gid = Self.gid(of: name) { gids.insert(gid) } else { unknown.append("group \(name)") }
        }
        self.uids = uids
        self.gids = gids
        self.unknownNames = unknown
    }

    /// Whether `peer` may use what this policy guards.
    public func permits(_ peer: PeerCredentials) -> Bool {
        if peer.uid == 0 || peer.uid == Self.ownUID || uids.contains(peer.uid) { return true }
        if gids.isEmpty { return false }
        if gids.contains(peer.gid) { return true }
        return peer.supplementaryGroups().contains { gids.contains($0) }
    }

    static func uid(of name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_uid
    }

    static func gid(of name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    /// The id of group `name`, for `socket.group`.
    public static func groupID(_ name: String) -> UInt32? { gid(of: name) }
}
