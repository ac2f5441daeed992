#if canImport(Glibc)
    package import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Creates the daemon's listening Unix socket by hand, so that its mode and group are set before
/// `listen(2)`: no connection can arrive while the socket still has the wrong permissions.
package enum UnixListener {
    /// Why the socket could not be created.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        /// What went wrong, for the operator.
        package let description: String
    }

    /// A listening socket at `path` with `mode` and (if given) `group`, in a parent directory
    /// that is created (0755) if missing and must not be writable by everyone. A stale socket
    /// file is removed; a live one (another daemon answering) is an error.
    package static func make(path: String, mode: mode_t, group: gid_t?, backlog: Int32 = 512) throws -> Int32 {
        if let problem = problem(placing: path) { throw Failure(description: problem) }
        try createDirectory(of: path)
        try removeStale(path)
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(SystemError("socket"))") }
        do {
            let address = try Self.address(path)
            // Created owner-only; widened to `mode` below, before listen().
            let previous = umask(0o177)
            let bound = address.withSockaddr { bind(fd, $0, $1) }
            umask(previous)
            guard bound == 0 else { throw Failure(description: "cannot bind \(path): \(SystemError("bind"))") }
            if let group, chown(path, uid_t.max, group) != 0 {
                throw Failure(description: "cannot give \(path) group \(group): \(SystemError("chown"))")
            }
            guard chmod(path, mode) == 0 else { throw Failure(description: "cannot chmod \(path): \(SystemError("chmod"))") }
            guard listen(fd, backlog) == 0 else { throw Failure(description: "cannot listen on \(path): \(SystemError("listen"))") }
            return fd
        } catch {
            close(fd)
            throw error
        }
    }

    /// Whether something answers on the socket at `path`.
    package static func isLive(_ path: String) -> Bool {
        guard let address = try? Self.address(path) else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return address.connect(fd) == nil
    }

    private static func removeStale(_ path: String) throws {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if isLive(path) {
            throw Failure(
                description: "another process is already serving on \(path) (a second maskinporten-broker?); stop it first or choose another socket.path")
        }
        guard unlink(path) == 0 else { throw Failure(description: "cannot remove the stale socket \(path): \(SystemError("unlink"))") }
    }

    /// What keeps a socket from being made at `path`, in the words `serve` refuses it with (and
    /// `check-config` reports): a path too long, a parent that is no directory or that everyone
    /// may write to, a file that is not a socket in its place. Nil when nothing does. A missing
    /// parent is no problem: it is created.
    package static func problem(placing path: String) -> String? {
        guard UnixSocketAddress(path) != nil else {
            return "the socket path \(path) is too long (\(path.utf8.count) bytes; at most 107)"
        }
        let directory = parent(of: path)
        var info = stat()
        if stat(directory, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else { return "\(directory) is not a directory" }
            if info.st_mode & 0o002 != 0 {
                return "\(directory) is writable by everyone, so anyone could replace the socket; use a directory such as /run/maskinporten-broker"
            }
        }
        if lstat(path, &info) == 0, info.st_mode & S_IFMT != S_IFSOCK {
            return "\(path) exists and is not a socket; remove it or choose another socket.path"
        }
        return nil
    }

    /// The parent directory of `path` when it does not exist yet (`make` creates it, 0755).
    package static func missingDirectory(of path: String) -> String? {
        let directory = parent(of: path)
        var info = stat()
        return stat(directory, &info) == 0 ? nil : directory
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func createDirectory(of path: String) throws {
        guard let directory = missingDirectory(of: path) else { return }
        var partial = ""
        for component in directory.split(separator: "/") {
            partial += "/" + component
            if mkdir(partial, 0o755) != 0 && errno != EEXIST {
                throw Failure(description: "cannot create \(partial): \(SystemError("mkdir"))")
            }
        }
        // Checked again once made: a component that existed may be writable by everyone.
        if let problem = problem(placing: path) { throw Failure(description: problem) }
    }

    static func address(_ path: String) throws -> UnixSocketAddress {
        guard let address = UnixSocketAddress(path) else {
            throw Failure(description: "the socket path \(path) is too long (\(path.utf8.count) bytes; at most 107)")
        }
        return address
    }
}
