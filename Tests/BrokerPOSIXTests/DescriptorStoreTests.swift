import CSystemShims
import Foundation
import Testing

@testable import BrokerPOSIX

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Sealed memory files and systemd's file descriptor store")
struct DescriptorStoreTests {
    @Test("a sealed memory file: its contents read back; writing, growing and shrinking it fail; more seals cannot be taken off")
    func sealed() throws {
        let contents = Array("tokens, version 1".utf8)
        let fd = try SealedMemoryFile.make(name: "tokens", contents: contents)
        defer { close(fd) }
        #expect(try SealedMemoryFile.read(fd, limit: 1024).get() == contents)
        let seals = try #require(SealedMemoryFile.seals(fd))
        #expect(seals == CSystemShims_SEALS_IMMUTABLE, "F_GET_SEALS: \(seals)")
        #expect(pwrite(fd, "x", 1, 0) == -1 && errno == EPERM)
        #expect(ftruncate(fd, 0) == -1 && errno == EPERM)
        #expect(ftruncate(fd, 4096) == -1 && errno == EPERM)
        #expect(CSystemShims_addSeals(fd, 0) == -1 && errno == EPERM, "F_SEAL_SEAL: no seal can be added or removed")
        #expect(readlink("/proc/self/fd/\(fd)").hasPrefix("/memfd:tokens"))
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0, "not inherited by children")
    }

    @Test("what is not sealed, or not a memory file, or too large, is refused with the reason")
    func refused() throws {
        let open = CSystemShims_sealableMemoryFile("unsealed")
        defer { close(open) }
        #expect(write(open, "abc", 3) == 3)
        #expect(SealedMemoryFile.read(open, limit: 1024).failure?.reason.contains("not sealed against writing") == true)
        let null = Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { close(null) }
        #expect(SealedMemoryFile.read(null, limit: 1024).failure?.reason.contains("not a sealed memory file") == true)
        let large = try SealedMemoryFile.make(name: "large", contents: [UInt8](repeating: 1, count: 2048))
        defer { close(large) }
        #expect(SealedMemoryFile.read(large, limit: 1024).failure?.reason.contains("2048 bytes, more than the 1024") == true)
    }

    @Test("FDSTORE=1 hands the descriptor over with its name; FDSTOREREMOVE=1 names what to drop")
    func store() throws {
        let (name, manager) = try Self.manager()
        defer { close(manager) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(manager, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "@" + name])
        let fd = try SealedMemoryFile.make(name: "tokens", contents: Array("kept".utf8))
        #expect(notifier.storeDescriptor(fd, name: "tokens"))
        close(fd)
        var buffer = [UInt8](repeating: 0, count: 512)
        var received: Int32 = -1
        let count = CSystemShims_receiveWithDescriptor(manager, &buffer, buffer.count, &received)
        #expect(String(decoding: buffer[0..<max(count, 0)], as: UTF8.self) == "FDSTORE=1\nFDNAME=tokens")
        #expect(received >= 0, "a descriptor came with the message")
        defer { close(received) }
        #expect(
            try SealedMemoryFile.read(received, limit: 64).get() == Array("kept".utf8), "the manager's copy reads the same, after the sender closed its own")

        #expect(notifier.removeStoredDescriptors(name: "tokens"))
        let removal = recv(manager, &buffer, buffer.count, 0)
        #expect(String(decoding: buffer[0..<max(removal, 0)], as: UTF8.self) == "FDSTOREREMOVE=1\nFDNAME=tokens")
    }

    @Test("a service manager that does not read: notifications are dropped, never waited on (Linux queues ten)")
    func fullQueue() throws {
        // Never read: its queue fills.
        let (name, manager) = try Self.manager()
        defer { close(manager) }
        let notifier = SystemdNotifier(environment: ["NOTIFY_SOCKET": "@" + name])
        let fd = try SealedMemoryFile.make(name: "tokens", contents: [1, 2, 3])
        defer { close(fd) }
        let started = ContinuousClock.now
        let sent = (0..<40).filter { index in index % 2 == 0 ? notifier.send("STATUS=\(index)") : notifier.storeDescriptor(fd, name: "tokens") }
        #expect(ContinuousClock.now - started < .seconds(1))
        #expect(sent.count < 40, "some were dropped: the queue was full")
    }

    /// A service manager's notification socket, bound in the abstract namespace: its name and
    /// descriptor.
    static func manager() throws -> (String, Int32) {
        let name = "maskinporten-broker-test-\(getpid())-\(Int.random(in: 0..<1_000_000))"
        let manager = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = [UInt8(0)] + Array(name.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: path) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(manager, $0, socklen_t(MemoryLayout<sa_family_t>.size + path.count)) }
        }
        guard bound == 0 else {
            close(manager)
            throw SystemError("bind")
        }
        return (name, manager)
    }

    func readlink(_ path: String) -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        let length = Glibc.readlink(path, &buffer, buffer.count - 1)
        return length > 0 ? String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
