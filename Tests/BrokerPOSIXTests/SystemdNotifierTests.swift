import Foundation
import Testing

@testable import BrokerPOSIX

#if canImport(Glibc)
    import Glibc
#endif

@Suite("sd_notify and LISTEN_FDS")
struct SystemdNotifierTests {
    /// A datagram socket bound at `address` (a leading NUL for the abstract namespace).
    func bound(_ address: [UInt8]) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var storage = sockaddr_un()
        storage.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &storage.sun_path) { $0.copyBytes(from: address) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count)
        let result = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        #expect(result == 0)
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        return fd
    }

    func receive(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self) : ""
    }

    @Test("notifications reach an abstract-namespace NOTIFY_SOCKET")
    func abstractAddress() throws {
        let name = "maskinporten-broker-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let fd = try bound([0] + Array(name.utf8))
        defer { close(fd) }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "@" + name])
        notifier.ready(status: "serving 2 profiles")
        #expect(receive(fd) == "READY=1\nSTATUS=serving 2 profiles")
        notifier.stopping()
        #expect(receive(fd) == "STOPPING=1")
    }

    @Test("notifications reach a path NOTIFY_SOCKET; without one nothing is sent")
    func pathAddress() throws {
        let path = NSTemporaryDirectory() + "notify-\(getpid())-\(Int.random(in: 0..<1_000_000)).sock"
        let fd = try bound(Array(path.utf8))
        defer {
            close(fd)
            unlink(path)
        }
        SystemdNotifier(environment: ["NOTIFY_SOCKET": path]).watchdog()
        #expect(receive(fd) == "WATCHDOG=1")
        #expect(!SystemdNotifier(environment: [:]).send("READY=1"))
        #expect(!SystemdNotifier(environment: [:]).isEnabled)
    }

    @Test("the watchdog interval is half of WATCHDOG_USEC, only for this pid")
    func watchdogInterval() {
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000"]).watchdogInterval == .seconds(15))
        #expect(
            SystemdNotifier(environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "\(getpid())"]).watchdogInterval == .seconds(15))
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"]).watchdogInterval == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@x"]).watchdogInterval == nil)
    }

    @Test("LISTEN_FDS is taken only when LISTEN_PID is this process")
    func listenFDs() {
        #expect(ListenFDs.take(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "\(getpid())"], unsetEnvironment: false) == [.init(fd: 3, name: "unknown")])
        #expect(
            ListenFDs.take(
                environment: ["LISTEN_FDS": "3", "LISTEN_PID": "\(getpid())", "LISTEN_FDNAMES": "maskinporten-broker.socket::tokens"], unsetEnvironment: false)
                == [.init(fd: 3, name: "maskinporten-broker.socket"), .init(fd: 4, name: "unknown"), .init(fd: 5, name: "tokens")])
        #expect(ListenFDs.take(environment: ["LISTEN_FDS": "1", "LISTEN_PID": "1"], unsetEnvironment: false).isEmpty)
        #expect(ListenFDs.take(environment: [:], unsetEnvironment: false).isEmpty)
    }

    @Test("a listener refuses a world-writable directory and a live socket, and replaces a stale one")
    func listener() throws {
        let base = NSTemporaryDirectory() + "listener-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        mkdir(base, 0o755)
        defer { _ = try? FileManager.default.removeItem(atPath: base) }
        let open = base + "/open"
        mkdir(open, 0o777)
        chmod(open, 0o777)
        #expect(throws: UnixListener.Failure.self) { try UnixListener.make(path: open + "/s.sock", mode: 0o660, group: nil) }
        let path = base + "/run/s.sock"
        let fd = try UnixListener.make(path: path, mode: 0o640, group: nil)
        var info = stat()
        stat(path, &info)
        #expect(info.st_mode & 0o777 == 0o640)
        #expect(UnixListener.isLive(path))
        let second = #expect(throws: UnixListener.Failure.self) { try UnixListener.make(path: path, mode: 0o660, group: nil) }
        #expect(second?.description.contains("already serving") == true)
        close(fd)
        // A child another test is spawning at this moment holds a copy of every descriptor until
        // it execs (close-on-exec closes it then): give that a moment.
        for _ in 0..<100 where UnixListener.isLive(path) { usleep(10_000) }
        #expect(!UnixListener.isLive(path))
        let again = try UnixListener.make(path: path, mode: 0o660, group: nil)
        close(again)
    }
}
