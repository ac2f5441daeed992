#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// sd_listen_fds(3): sockets passed in by systemd (`$LISTEN_FDS`, `$LISTEN_PID`), starting at
/// file descriptor 3.
package enum ListenFDs {
    /// The first passed descriptor.
    package static let start: Int32 = 3

    /// The passed descriptors, when they are meant for this process. The variables are removed
    /// afterwards so that child processes do not take the sockets for theirs.
    package static func take(environment: [String: String]? = nil, unsetEnvironment: Bool = true) -> [Int32] {
        let environment = environment ?? SystemdNotifier.processEnvironment()
        defer {
            if unsetEnvironment {
                unsetenv("LISTEN_FDS")
                unsetenv("LISTEN_PID")
                unsetenv("LISTEN_FDNAMES")
            }
        }
        guard let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == getpid(),
            let count = environment["LISTEN_FDS"].flatMap(Int32.init), count > 0
        else { return [] }
        return (0..<count).map { start + $0 }
    }

    /// Whether `fd` is a listening Unix stream socket.
    package static func isListeningUnixStream(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var accepting: Int32 = 0
        var domain: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_STREAM.rawValue) else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &length) == 0, accepting == 1 else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0 else { return false }
        return domain == AF_UNIX
    }

    /// The path a Unix socket is bound to (`getsockname`), for saying where the daemon listens
    /// when systemd made the socket; nil for an unnamed or abstract socket.
    package static func boundPath(_ fd: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        let path = withUnsafeBytes(of: address.sun_path) { Array($0.prefix { $0 != 0 }) }
        return path.isEmpty ? nil : String(decoding: path, as: UTF8.self)
    }
}
