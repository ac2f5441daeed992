import BrokerClient
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What `token` and `health` say when the socket is there but the daemon does not answer: the
/// state of a daemon that systemd keeps failing to start while its socket unit holds the socket.
@Suite("SocketClient")
struct SocketClientTests {
    /// A listening Unix socket at a new path, which accepts (the kernel queues) and answers nothing.
    func listener() throws -> (fd: Int32, path: String) {
        let path = NSTemporaryDirectory() + "client-\(UUID().uuidString.prefix(8)).sock"
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        #expect(bound == 0)
        #expect(listen(fd, 8) == 0)
        return (fd, path)
    }

    @Test("a socket that takes the connection and never answers: the wait, then where to look")
    func noAnswer() throws {
        let (fd, path) = try listener()
        defer {
            close(fd)
            unlink(path)
        }
        var client = SocketClient(path: path)
        client.timeoutSeconds = 1
        let error = #expect(throws: SocketClient.Failure.self) { try client.request("GET", "/healthz", accept: "text/plain") }
        #expect(
            error?.description
                == "no answer from \(path) within 1 s: the socket takes connections but the daemon does not answer; systemd holds them while the daemon starts, and while it fails to: see systemctl status maskinporten-broker and journalctl -u maskinporten-broker"
        )
    }

    @Test("a connection closed without an answer points at the daemon's status")
    func closedWithoutAnswer() throws {
        let (fd, path) = try listener()
        defer {
            close(fd)
            unlink(path)
        }
        let closer = Thread {
            let connection = accept(fd, nil, nil)
            var byte: UInt8 = 0
            _ = recv(connection, &byte, 1, 0)
            close(connection)
        }
        closer.start()
        var client = SocketClient(path: path)
        client.timeoutSeconds = 5
        let error = #expect(throws: SocketClient.Failure.self) { try client.request("GET", "/healthz", accept: "text/plain") }
        #expect(
            error?.description.hasSuffix("see systemctl status maskinporten-broker and journalctl -u maskinporten-broker") == true,
            "\(error?.description ?? "")")
    }

    @Test("no socket at all: is the daemon running, and where to look")
    func missing() {
        let client = SocketClient(path: "/nonexistent/broker.sock")
        let error = #expect(throws: SocketClient.Failure.self) { try client.request("GET", "/healthz", accept: "text/plain") }
        #expect(
            error?.description
                == "cannot connect to /nonexistent/broker.sock: No such file or directory (is maskinporten-broker running? see: systemctl status maskinporten-broker.socket maskinporten-broker)"
        )
    }
}
