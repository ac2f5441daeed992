#if canImport(Glibc)
    package import Glibc
#elseif canImport(Musl)
    package import Musl
#endif

/// A Unix socket address: a path, or an abstract-namespace name written `@name` (as systemd
/// writes `NOTIFY_SOCKET`).
package struct UnixSocketAddress {
    private var storage = sockaddr_un()
    private let length: socklen_t

    /// The address of `path`; nil when it does not fit `sun_path` (107 bytes).
    package init?(_ path: String) {
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        guard !bytes.isEmpty, bytes.count < MemoryLayout.size(ofValue: storage.sun_path) else { return nil }
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: bytes) }
        // Abstract names are exactly their bytes; paths are NUL-terminated.
        length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
    }

    /// Calls `body` with the address as `bind`, `connect` and `sendto` take it.
    package func withSockaddr<T>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        withUnsafePointer(to: storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }

    /// `connect(2)` for `fd`, retried on EINTR; the errno on failure.
    package func connect(_ fd: Int32) -> Int32? {
        while true {
            let result = withSockaddr { Glibc.connect(fd, $0, $1) }
            if result == 0 { return nil }
            if errno != EINTR { return errno }
        }
    }
}
