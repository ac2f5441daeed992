#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Who a process runs as, for judging whether it could read a file: what `check-config` run by
/// root needs to know about the service's user, which is not the user it runs as itself.
///
/// The judgement is the kernel's for owner, group and mode bits (search permission on every
/// directory on the way, read permission on the file). ACLs are not read: a file an ACL opens
/// to the reader is reported unreadable, and the fix the report gives works all the same.
package struct FileReader: Sendable, Equatable {
    /// The user's name, for messages.
    package var name: String
    /// The user id.
    package var uid: UInt32
    /// The primary group and every supplementary group.
    package var gids: Set<UInt32>

    /// A reader.
    package init(name: String, uid: UInt32, gids: Set<UInt32>) {
        self.name = name
        self.uid = uid
        self.gids = gids
    }

    /// The user `name` as systemd starts a unit with `User=name`, `Group=group` and
    /// `SupplementaryGroups=`: the primary group is `group` when given (else the user's own), and
    /// the user's groups from the group database are added, as `initgroups` does. Nil when the
    /// host has no such user, or no such group.
    package static func account(_ name: String, group: String? = nil, supplementaryGroups: [String] = []) -> FileReader? {
        guard let (uid, primary) = Accounts.user(named: name) else { return nil }
        var gids: Set<UInt32> = [primary]
        if let group {
            guard let gid = Accounts.gid(of: group) else { return nil }
            gids = [gid]
        }
        gids.formUnion(Accounts.groups(of: name, primary: primary))
        for group in supplementaryGroups {
            if let gid = Accounts.gid(of: group) { gids.insert(gid) }
        }
        return FileReader(name: name, uid: uid, gids: gids)
    }

    /// This process: its effective user and groups.
    package static var current: FileReader {
        let uid = geteuid()
        var gids: Set<UInt32> = [getegid()]
        let count = getgroups(0, nil)
        if count > 0 {
            var list = [gid_t](repeating: 0, count: Int(count))
            let got = getgroups(count, &list)
            if got > 0 { gids.formUnion(list.prefix(Int(got))) }
        }
        return FileReader(name: Accounts.name(of: uid) ?? "uid \(uid)", uid: uid, gids: gids)
    }

    /// Why this reader cannot read the file at `path`, or nil when it can (or when the file
    /// does not exist: that is reported where the file is read). Symbolic links are followed
    /// as opening the file follows them.
    package func denial(reading path: String) -> FileDenial? {
        denial(opening: path, needs: 0o4)
    }

    /// Why this reader cannot open the file at `path` with `needs` (0o4 read, 0o2 write, 0o6
    /// both; a Unix socket needs write to connect), or nil when it can or the file is absent.
    package func denial(opening path: String, needs: UInt32) -> FileDenial? {
        guard uid != 0 else { return nil }
        // This process may be the reader that cannot resolve the path: then the path as given.
        let target: String
        if let resolved = realpath(path, nil) {
            target = String(cString: resolved)
            free(resolved)
        } else if errno == EACCES, path.hasPrefix("/") {
            target = path
        } else {
            return nil
        }
        var directory = ""
        for component in target.split(separator: "/").dropLast() {
            directory += "/\(component)"
            if let denial = denial(directory, needs: 0o1) { return denial }
        }
        return denial(target, needs: mode_t(needs))
    }

    /// The stat of `path` when this reader lacks any of `needs` (0o4 read, 0o2 write, 0o1
    /// search) on it.
    private func denial(_ path: String, needs bit: mode_t) -> FileDenial? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let bits: mode_t
        if info.st_uid == uid {
            bits = (info.st_mode >> 6) & 0o7
        } else if gids.contains(info.st_gid) {
            bits = (info.st_mode >> 3) & 0o7
        } else {
            bits = info.st_mode & 0o7
        }
        guard bits & bit != bit else { return nil }
        return FileDenial(
            path: path, isDirectory: info.st_mode & S_IFMT == S_IFDIR, owner: Accounts.name(of: info.st_uid) ?? "\(info.st_uid)",
            group: Accounts.groupName(of: info.st_gid) ?? "\(info.st_gid)", mode: UInt32(info.st_mode & 0o7777))
    }
}

/// What keeps a reader from a file: the file itself, or a directory on the way to it.
package struct FileDenial: Sendable, Equatable, CustomStringConvertible {
    /// The file, or the directory the reader may not search.
    package var path: String
    /// Whether `path` is a directory on the way rather than the file.
    package var isDirectory: Bool
    /// Its owner's name.
    package var owner: String
    /// Its group's name.
    package var group: String
    /// Its permission bits.
    package var mode: UInt32

    /// `/etc/maskinporten-broker/credentials (root:root, mode 0700)`.
    package var description: String {
        let octal = String(mode, radix: 8)
        return "\(path) (\(owner):\(group), mode \(String(repeating: "0", count: max(0, 4 - octal.count)) + octal))"
    }
}
