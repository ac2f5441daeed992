import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Plain Unix sockets for tests that misbehave on purpose (half-open connections, garbage) and
/// for receiving systemd notifications.
package final class RawSocket: @unchecked Sendable {
    // @unchecked: one test uses one socket from one task.
    package let fd: Int32

    private init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        close(fd)
    }

    /// A stream connection to `path`.
    package static func connect(_ path: String) throws -> RawSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket failed") }
        var address = try Self.address(path)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw TestSupportError("connect \(path): \(String(cString: strerror(errno)))")
        }
        return RawSocket(fd: fd)
    }

    /// A datagram socket bound at `path`, as systemd's `NOTIFY_SOCKET` is.
    package static func datagramListener(_ path: String) throws -> RawSocket {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket failed") }
        var address = try Self.address(path)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard result == 0 else {
            close(fd)
            throw TestSupportError("bind \(path): \(String(cString: strerror(errno)))")
        }
        return RawSocket(fd: fd)
    }

    /// Writes all of `bytes`; false when the peer has gone.
    @discardableResult
    package func send(_ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    /// Writes `text`.
    @discardableResult
    package func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// Reads what arrives within `timeout`: until the peer closes, or nothing more comes.
    package func receive(timeout: Duration = .seconds(5)) -> String {
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let left = end - ContinuousClock.now
            let ready = poll(&poller, 1, Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            if ready <= 0 { break }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            result.append(contentsOf: buffer[0..<count])
            if !result.isEmpty, poll(&poller, 1, 100) <= 0 { break }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// Reads until `marker` has arrived `count` times (or the peer closes, or `timeout` passes),
    /// then what follows within 100 ms: counted as the bytes come, so that megabytes of answers
    /// cost one pass.
    package func receive(untilCount count: Int, of marker: String, timeout: Duration = .seconds(10)) -> String {
        let needle = Array(marker.utf8)
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var found = 0
        var scanned = 0
        let end = ContinuousClock.now + timeout
        while found < count, ContinuousClock.now < end {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) >= 0 else { break }
            if poller.revents == 0 { continue }
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received <= 0 { break }
            result.append(contentsOf: buffer[0..<received])
            while scanned + needle.count <= result.count {
                if result[scanned] == needle[0] && result[scanned..<(scanned + needle.count)].elementsEqual(needle) {
                    found += 1
                    scanned += needle.count
                } else {
                    scanned += 1
                }
            }
        }
        // The last one's rest: what follows within 100 ms.
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, 100) > 0 {
            let received = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if received <= 0 { break }
            result.append(contentsOf: buffer[0..<received])
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// The datagrams waiting now, without waiting for more (a `NOTIFY_SOCKET`).
    package func receiveWaitingDatagrams() -> [String] {
        var datagrams: [String] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count <= 0 { return datagrams }
            datagrams.append(String(decoding: buffer[0..<count], as: UTF8.self))
        }
    }

    /// Whether the peer has closed the connection (reads EOF or an error within `timeout`).
    package func isClosedByPeer(timeout: Duration = .seconds(5)) -> Bool {
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let milliseconds = Int32(timeout.components.seconds * 1000)
        guard poll(&poller, 1, milliseconds) > 0 else { return false }
        var byte: UInt8 = 0
        return recv(fd, &byte, 1, Int32(MSG_PEEK)) <= 0
    }

    private static func address(_ path: String) throws -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { throw TestSupportError("socket path too long: \(path)") }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        return address
    }
}
