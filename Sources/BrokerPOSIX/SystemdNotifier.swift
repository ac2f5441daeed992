#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// sd_notify(3) without libsystemd: datagrams to `$NOTIFY_SOCKET` (a path, or an abstract
/// address starting with `@`). Without `$NOTIFY_SOCKET` every call does nothing.
package struct SystemdNotifier: Sendable {
    /// The socket address, as given in the environment.
    package let socketPath: String?
    /// Half of `$WATCHDOG_USEC`, when the watchdog is enabled for this process.
    package let watchdogInterval: Duration?
    /// `$FDSTORE`: how many descriptors systemd keeps for the service (systemd 254 and later say
    /// it; nil when not said).
    package let descriptorStoreMax: Int?

    /// A notifier reading `environment` (by default the process environment).
    package init(environment: [String: String]? = nil) {
        let environment = environment ?? ProcessEnvironment.all
        let path = environment["NOTIFY_SOCKET"].flatMap { $0.isEmpty ? nil : $0 }
        socketPath = path
        descriptorStoreMax = environment["FDSTORE"].flatMap { Int($0) }
        if let usec = environment["WATCHDOG_USEC"].flatMap(UInt64.init), usec > 0,
            environment["WATCHDOG_PID"].flatMap(Int32.init).map({ $0 == getpid() }) ?? true
        {
            watchdogInterval = .microseconds(Int64(usec / 2))
        } else {
            watchdogInterval = nil
        }
    }

    /// Whether a service manager listens.
    package var isEnabled: Bool { socketPath != nil }

    /// `READY=1` with a status line.
    package func ready(status: String) { send("READY=1\nSTATUS=\(status)") }
    /// `STATUS=`.
    package func status(_ text: String) { send("STATUS=\(text)") }
    /// `RELOADING=1` with `MONOTONIC_USEC`, as `Type=notify-reload` wants it.
    package func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        send("RELOADING=1\nMONOTONIC_USEC=\(usec)")
    }
    /// `STOPPING=1`.
    package func stopping() { send("STOPPING=1") }
    /// `WATCHDOG=1`.
    package func watchdog() { send("WATCHDOG=1") }

    /// `FDSTORE=1` with `FDNAME=name`: systemd keeps a duplicate of `fd` while the unit restarts
    /// (with `FileDescriptorStoreMax=` above zero) and passes it back in `$LISTEN_FDS` under that
    /// name. False when no service manager took it.
    @discardableResult
    package func storeDescriptor(_ fd: Int32, name: String) -> Bool {
        send("FDSTORE=1\nFDNAME=\(name)", descriptor: fd)
    }

    /// `FDSTOREREMOVE=1` with `FDNAME=name`: systemd closes every descriptor it keeps under it.
    @discardableResult
    package func removeStoredDescriptors(name: String) -> Bool {
        send("FDSTOREREMOVE=1\nFDNAME=\(name)")
    }

    /// Sends one datagram, with `descriptor` attached when given; failures are ignored, as
    /// sd_notify's callers do. It never waits: a service manager whose queue is full (ten
    /// datagrams, by Linux's default) loses this one rather than stopping the daemon.
    @discardableResult
    package func send(_ message: String, descriptor: Int32? = nil) -> Bool {
        guard let socketPath else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard let address = UnixSocketAddress(socketPath) else { return false }
        let bytes = Array(message.utf8)
        let flags: Int32 = Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)
        let sent: Int = address.withSockaddr { socketAddress, length in
            bytes.withUnsafeBytes { payload in
                (try? retryingEINTR("sendmsg") {
                    if let descriptor {
                        DescriptorPassing.send(on: fd, to: socketAddress, length: length, payload: payload, descriptor: descriptor)
                    } else {
                        sendto(fd, payload.baseAddress, payload.count, flags, socketAddress, length)
                    }
                }) ?? -1
            }
        }
        return sent == bytes.count
    }
}
