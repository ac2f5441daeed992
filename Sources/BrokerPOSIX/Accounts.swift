#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Users and groups of this host by name, through NSS (`getpwnam_r`, `getgrnam_r`): what the
/// access check resolves allow lists with, and what `check-config` checks them against.
package enum Accounts {
    /// The uid of user `name`, nil when the host has no such user.
    package static func uid(of name: String) -> UInt32? {
        user(named: name)?.uid
    }

    /// The gid of group `name`, nil when the host has no such group.
    package static func gid(of name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }
}

extension Accounts {
    /// The uid and primary gid of user `name`, nil when the host has no such user.
    package static func user(named name: String) -> (uid: UInt32, gid: UInt32)? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return (entry.pw_uid, entry.pw_gid)
    }

    /// The name of user `uid`, nil when the host has none.
    package static func name(of uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.pw_name)
    }

    /// The name of group `gid`, nil when the host has none.
    package static func groupName(of gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.gr_name)
    }

    /// Every group user `name` is a member of in the group database, `primary` among them: what
    /// `initgroups` gives a process started as that user.
    package static func groups(of name: String, primary: UInt32) -> [UInt32] {
        var count: Int32 = 64
        while true {
            var list = [gid_t](repeating: 0, count: Int(count))
            var found = count
            if getgrouplist(name, primary, &list, &found) >= 0 { return Array(list.prefix(Int(found))) }
            guard found > count else { return [primary] }
            count = found
        }
    }
}

extension Accounts {
    /// The name of user `name`'s primary group.
    package static func primaryGroupName(of name: String) -> String? {
        user(named: name).flatMap { groupName(of: $0.gid) }
    }
}
