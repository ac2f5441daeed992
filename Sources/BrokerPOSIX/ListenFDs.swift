#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// sd_listen_fds(3): sockets passed in by systemd (`$LISTEN_FDS`, `$LISTEN_PID`), starting at
/// file descriptor 3.
public enum ListenFDs {
    /// The first passed descriptor.
    public static let start: Int32 = 3

    /// The passed descriptors, when they are meant for this process. The variables are removed
    /// afterwards so that child processes do not take the sockets for theirs.
    public static func take(environment: [String: String]? = nil, unsetEnvironment: Bool = true) -> [Int32] {
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
    public static func isListeningUnixStream(_ fd: Int32) -> Bool {
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
}
