#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// sd_listen_fds_with_names(3): descriptors passed in by systemd (`$LISTEN_FDS`, `$LISTEN_PID`,
/// `$LISTEN_FDNAMES`), starting at file descriptor 3: the socket unit's sockets, then what the
/// service put in its file descriptor store before it restarted.
package enum ListenFDs {
    /// The first passed descriptor.
    package static let start: Int32 = 3

    /// One passed descriptor and its name (`FileDescriptorName=` of a socket, the default being
    /// the socket unit's name; `FDNAME=` of a stored one; "unknown" when none is given).
    package struct Passed: Sendable, Equatable {
        package var fd: Int32
        package var name: String

        package init(fd: Int32, name: String) {
            self.fd = fd
            self.name = name
        }
    }

    /// The passed descriptors, when they are meant for this process. The variables are removed
    /// afterwards so that child processes do not take the descriptors for theirs.
    package static func take(environment: [String: String]? = nil, unsetEnvironment: Bool = true) -> [Passed] {
        let environment = environment ?? ProcessEnvironment.all
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
        let names = environment["LISTEN_FDNAMES"].map { $0.split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        return (0..<count).map { index in
            Passed(fd: start + index, name: Int(index) < names.count && !names[Int(index)].isEmpty ? names[Int(index)] : "unknown")
        }
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
