import BrokerTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Peer-credential access control with real users, made for the test.
@Suite("Daemon access control", .serialized, .timeLimit(.minutes(2)), .sharedKeys)
struct DaemonAccessTests {
    @Test("allowed users and groups get tokens; another user gets 403 and never a token; outsiders cannot connect")
    func peerCredentials() async throws {
        let suffix = Int.random(in: 1000...9999)
        let socketGroup = "mpbsock\(suffix)"
        let tokenGroup = "mpbtok\(suffix)"
        let allowed = "mpbok\(suffix)"
        let member = "mpbgrp\(suffix)"
        let denied = "mpbno\(suffix)"
        let outsider = "mpbout\(suffix)"
        try await Command.run("groupadd", [socketGroup])
        try await Command.run("groupadd", [tokenGroup])
        try await Command.run("useradd", ["-M", "-G", socketGroup, allowed])
        try await Command.run("useradd", ["-M", "-G", "\(socketGroup),\(tokenGroup)", member])
        try await Command.run("useradd", ["-M", "-G", socketGroup, denied])
        try await Command.run("useradd", ["-M", outsider])
        defer {
            for user in [allowed, member, denied, outsider] { _ = try? Command.runBlocking("userdel", [user]) }
            for group in [socketGroup, tokenGroup] { _ = try? Command.runBlocking("groupdel", [group]) }
        }
        let harness = try await DaemonHarness(
            .live, socketMode: "0660", socketGroup: socketGroup, allow: "      users: [\(allowed)]\n      groups: [\(tokenGroup)]")
        try await harness.startDaemon()

        func curlAs(_ user: String, _ path: String) async throws -> Command.Result {
            try await Command.run(
                "runuser",
                ["-u", user, "--", "curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", "--unix-socket", harness.socketPath, "http://localhost\(path)"])
        }

        let ok = try await curlAs(allowed, "/v1/token/notifications")
        #expect(ok.output.hasSuffix("\n200"), "\(ok.output) \(ok.errorOutput)")
        let byGroup = try await curlAs(member, "/v1/token/notifications")
        #expect(byGroup.output.hasSuffix("\n200"), "supplementary group: \(byGroup.output)")

        let refused = try await curlAs(denied, "/v1/token/notifications")
        #expect(refused.output.hasSuffix("\n403"), "\(refused.output)")
        #expect(refused.output.contains("\"error\":\"access_denied\""))
        #expect(!refused.output.contains("access_token"))
        let refresh = try await Command.run(
            "runuser",
            [
                "-u", denied, "--", "curl", "-sS", "-X", "POST", "-w", "\n%{http_code}", "--unix-socket", harness.socketPath,
                "http://localhost/v1/token/notifications/refresh",
            ])
        #expect(refresh.output.hasSuffix("\n403"))
        let cli = try await Command.run("runuser", ["-u", denied, "--", try BrokerExecutable.path, "token", "notifications", "--socket", harness.socketPath])
        #expect(cli.status == 1)
        #expect(cli.output.isEmpty)
        #expect(cli.errorOutput.contains("HTTP 403 access_denied"))

        // /v1/profiles lists only what the caller may use; health is open to all who connect.
        #expect(try await curlAs(denied, "/v1/profiles").output.hasPrefix("{\"profiles\":[]}"))
        #expect(try await curlAs(allowed, "/v1/profiles").output.contains("\"profile\":\"notifications\""))
        #expect(try await curlAs(denied, "/healthz").output.hasSuffix("\n200"))

        // Not in the socket's group: the kernel refuses the connection.
        let outside = try await curlAs(outsider, "/healthz")
        #expect(outside.status != 0)
        #expect(outside.errorOutput.lowercased().contains("permission denied") || outside.errorOutput.contains("Couldn't connect"))
        // The client command says which group to join, and how.
        let outsideClient = try await Command.run(
            "runuser", ["-u", outsider, "--", try BrokerExecutable.path, "token", "notifications", "--socket", harness.socketPath])
        #expect(outsideClient.status == 1)
        #expect(
            outsideClient.errorOutput.contains(
                "Permission denied (only the socket's group, \(socketGroup), may connect: add this user to it, as SupplementaryGroups=\(socketGroup) in a service's unit"
            ),
            "\(outsideClient.errorOutput)")

        // Denials are audited with the peer's ids.
        let uid = try await Command.run("id", ["-u", denied]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let log = try await harness.waitForLog(containing: "access denied")
        #expect(log.contains("uid=\(uid)"))
        await harness.stop()
    }
}

/// Misbehaving clients on the socket.
@Suite("Daemon under abuse", .serialized, .timeLimit(.minutes(2)), .sharedKeys)
struct DaemonAbuseTests {
    @Test("garbage, oversized headers, smuggling shapes and hundreds of half-open connections do not stop a normal request")
    func abuse() async throws {
        let harness = try await DaemonHarness(.live)
        try await harness.startDaemon()

        // 300 connections that send half a request head and wait.
        var halfOpen: [RawSocket] = []
        for _ in 0..<300 {
            let socket = try RawSocket.connect(harness.socketPath)
            socket.send("GET /v1/token/notifications HTTP/1.1\r\nHost: localhost\r\n")
            halfOpen.append(socket)
        }

        let garbage = try RawSocket.connect(harness.socketPath)
        garbage.send([0x16, 0x03, 0x01, 0x00, 0xff, 0x00, 0x0d, 0x0a, 0x0d, 0x0a] + Array("\u{1}\u{2}NOT HTTP\r\n\r\n".utf8))
        let garbageAnswer = garbage.receive(timeout: .seconds(3))
        #expect(garbageAnswer.isEmpty || garbageAnswer.hasPrefix("HTTP/1.1 400"))

        let oversized = try RawSocket.connect(harness.socketPath)
        oversized.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Flood: " + String(repeating: "a", count: 200_000) + "\r\n\r\n")
        let oversizedAnswer = oversized.receive(timeout: .seconds(3))
        #expect(oversizedAnswer.hasPrefix("HTTP/1.1 431"), "\(oversizedAnswer.prefix(80))")
        #expect(oversizedAnswer.contains("\"error\":\"invalid_request\""), "the broker's error body")
        #expect(oversized.isClosedByPeer())

        let manyHeaders = try RawSocket.connect(harness.socketPath)
        manyHeaders.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + (0..<500).map { "X-H\($0): v\r\n" }.joined() + "\r\n")
        #expect(!manyHeaders.receive(timeout: .seconds(3)).hasPrefix("HTTP/1.1 200"))

        let smuggling = try RawSocket.connect(harness.socketPath)
        smuggling.send("POST /v1/token/notifications/refresh HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        #expect(smuggling.receive(timeout: .seconds(3)).hasPrefix("HTTP/1.1 400"))

        let doubleLength = try RawSocket.connect(harness.socketPath)
        doubleLength.send("POST /v1/token/notifications/refresh HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab")
        #expect(doubleLength.receive(timeout: .seconds(3)).hasPrefix("HTTP/1.1 400"))

        let longPath = try await harness.request("/v1/token/" + String(repeating: "x", count: 8000))
        #expect(longPath.status == 414)
        for path in ["/v1/token/..%2f..%2fetc%2fpasswd", "/v1/token/%00", "/v1/token/../../healthz"] {
            let answer = try await harness.request(path, ["--path-as-is"])
            #expect([400, 404].contains(answer.status), "\(path): \(answer.status)")
            #expect(!answer.body.contains("access_token"))
        }

        // A normal request is served at once, through all of that.
        let start = ContinuousClock.now
        let normal = try await harness.request("/v1/token/notifications")
        #expect(normal.status == 200)
        #expect(ContinuousClock.now - start < .seconds(5))
        let metrics = try await harness.request("/metrics").body
        #expect(metrics.contains("maskinporten_broker_open_connections "))

        // Slowloris: a request head must arrive within 10 s, or the connection is closed; on a
        // kept-alive connection the 10 s start again after each answer.
        let keptAlive = try RawSocket.connect(harness.socketPath)
        keptAlive.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(keptAlive.receive(timeout: .seconds(3)).hasPrefix("HTTP/1.1 200"))
        keptAlive.send("GET /heal")
        try await Task.sleep(for: .seconds(11))
        #expect(halfOpen[0].isClosedByPeer(timeout: .seconds(2)))
        #expect(halfOpen[299].isClosedByPeer(timeout: .seconds(2)))
        #expect(keptAlive.isClosedByPeer(timeout: .seconds(2)))
        #expect(try await harness.request("/healthz").status == 200)
        await harness.stop()
    }
}

@Suite("Daemon under a connection flood", .serialized, .timeLimit(.minutes(2)), .sharedKeys)
struct DaemonFloodTests {
    static func residentKiB(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1]) ?? 0
    }

    @Test("5,000 connections: the cap holds, memory stays bounded, and a normal request is still served")
    func fiveThousandConnections() async throws {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        var raised = rlimit(rlim_cur: min(limit.rlim_max, 16_384), rlim_max: limit.rlim_max)
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &raised)
        try #require(raised.rlim_cur >= 6_000, "the test needs 6,000 descriptors")

        let harness = try await DaemonHarness(.live)
        try await harness.startDaemon()
        let pid = harness.daemon!.pid
        _ = try await harness.request("/v1/token/notifications")
        let before = try Self.residentKiB(pid)
        var sockets: [RawSocket] = []
        for index in 0..<5_000 {
            let socket = try RawSocket.connect(harness.socketPath)
            if index % 2 == 0 { socket.send("GET /v1/token/notifications HTTP/1.1\r\nHost: x\r\n") }
            sockets.append(socket)
        }
        try await Task.sleep(for: .milliseconds(500))
        let during = try Self.residentKiB(pid)
        let metrics = try await harness.request("/metrics").body
        let openLine = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("maskinporten_broker_open_connections ") })
        let open = Double(openLine.split(separator: " ")[1]).map { Int($0) } ?? -1
        #expect(open <= 1_030, "\(openLine) (the cap, plus the metrics request, while evicted connections finish closing)")
        let evictedLine = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("maskinporten_broker_evicted_connections_total ") })
        #expect((Double(evictedLine.split(separator: " ")[1]) ?? 0) >= 3_900)
        #expect(try await harness.request("/v1/token/notifications").status == 200, "a normal request gets through the flood")
        #expect(during - before < 64 * 1024, "resident memory grew by \(during - before) KiB under 5,000 connections")
        print("flood: 5000 connections, \(open) open at the cap, RSS \(before) KiB -> \(during) KiB")
        sockets.removeAll()
        await harness.stop()
    }
}

/// The socket's two servers on one connection: the fast path answers cached-token GETs on the
/// accepting thread, and hands the connection to NIO at the first request it does not answer.
@Suite("Daemon's fast path and NIO on one connection", .serialized, .timeLimit(.minutes(2)), .sharedKeys)
struct DaemonFastPathTests {
    static func answers(_ text: String) -> [String] {
        text.components(separatedBy: "HTTP/1.1 ").dropFirst().map { "HTTP/1.1 " + $0 }
    }

    @Test("pipelined, split, closing and handed-over requests are answered in order, alike on both paths")
    func bothPaths() async throws {
        let harness = try await DaemonHarness(.live)
        try await harness.startDaemon()
        #expect(try await harness.request("/v1/token/notifications").status == 200)

        // Pipelined in one write: the fast path answers the first, NIO the rest, in order.
        let pipelined = try RawSocket.connect(harness.socketPath)
        pipelined.send(
            "GET /v1/token/notifications HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/token/notifications HTTP/1.1\r\nHost: x\r\nAccept: text/plain\r\n\r\n"
        )
        let received = pipelined.receive(untilCount: 3, of: "HTTP/1.1 ")
        let three = Self.answers(received)
        try #require(three.count == 3, "\(received.prefix(300))")
        #expect(three[0].hasPrefix("HTTP/1.1 200 OK\r\n") && three[0].contains("\"access_token\":"))
        #expect(three[1].hasPrefix("HTTP/1.1 200 OK\r\n") && three[1].hasSuffix("\r\n\r\nok\n"))
        #expect(three[2].hasPrefix("HTTP/1.1 200 OK\r\n") && three[2].contains("Content-Type: text/plain") && !three[2].contains("{"))
        #expect(!pipelined.isClosedByPeer(timeout: .milliseconds(200)))

        // A head in pieces.
        let split = try RawSocket.connect(harness.socketPath)
        for piece in ["GET /v1/tok", "en/notifications HTTP/1.1\r\nHo", "st: x\r\n", "\r", "\n"] {
            split.send(piece)
            try await Task.sleep(for: .milliseconds(50))
        }
        let splitAnswer = split.receive(timeout: .seconds(3))
        #expect(splitAnswer.hasPrefix("HTTP/1.1 200 OK\r\n") && splitAnswer.contains("Connection: keep-alive\r\n"), "\(splitAnswer.prefix(200))")

        // Kept alive on the fast path; then a POST hands it to NIO; then a GET there.
        let keptAlive = try RawSocket.connect(harness.socketPath)
        for request in [
            "GET /v1/token/notifications HTTP/1.1\r\n\r\n", "GET /v1/token/notifications HTTP/1.1\r\n\r\n",
            "POST /v1/token/notifications/refresh HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "GET /v1/token/notifications HTTP/1.1\r\n\r\n",
        ] {
            keptAlive.send(request)
            let answer = keptAlive.receive(timeout: .seconds(5))
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.contains("\"access_token\":"), "\(request.prefix(40)): \(answer.prefix(200))")
        }

        // Closing: HTTP/1.0 without keep-alive, and Connection: close.
        for request in ["GET /v1/token/notifications HTTP/1.0\r\n\r\n", "GET /v1/token/notifications HTTP/1.1\r\nConnection: close\r\n\r\n"] {
            let closing = try RawSocket.connect(harness.socketPath)
            closing.send(request)
            let answer = closing.receive(timeout: .seconds(3))
            #expect(answer.hasPrefix("HTTP/1.1 200 OK\r\n") && answer.contains("Connection: close\r\n"), "\(answer.prefix(200))")
            #expect(closing.isClosedByPeer(timeout: .seconds(2)))
        }

        // A reader slower than the answers: 400 pipelined requests (17 KB, which the socket takes
        // at once) make 500 KB of answers, more than the socket holds (about 200 KB): it fills,
        // and NIO writes the rest, in order.
        let flood = try RawSocket.connect(harness.socketPath)
        flood.send(String(repeating: "GET /v1/token/notifications HTTP/1.1\r\n\r\n", count: 400))
        let flooded = Self.answers(flood.receive(untilCount: 400, of: "HTTP/1.1 ", timeout: .seconds(20)))
        #expect(flooded.count == 400)
        #expect(flooded.allSatisfy { $0.hasPrefix("HTTP/1.1 200 OK\r\n") && $0.hasSuffix("}\n") })

        // The same refusal from the fast path and from NIO, byte for byte.
        let unknown = "GET /v1/token/nope HTTP/1.1\r\nHost: x\r\n\r\n"
        let fast = try RawSocket.connect(harness.socketPath)
        fast.send(unknown)
        let fastAnswer = fast.receive(timeout: .seconds(3))
        let handed = try RawSocket.connect(harness.socketPath)
        handed.send("GET /healthz HTTP/1.1\r\n\r\n" + unknown)
        let handedAnswers = handed.receive(untilCount: 2, of: "HTTP/1.1 ")
        #expect(fastAnswer.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "\(fastAnswer.prefix(200))")
        #expect(Self.answers(handedAnswers).last == fastAnswer)
        await harness.stop()
    }

    @Test("shutdown while NIO holds half a request head, and the fast path another: both closed, exit 0")
    func shutdownWithHalfHeads() async throws {
        let harness = try await DaemonHarness(.live)
        try await harness.startDaemon()
        let nio = try RawSocket.connect(harness.socketPath)
        nio.send("POST /v1/token/notifications/refresh HTTP/1.1\r\nHost: x\r\n")
        let fast = try RawSocket.connect(harness.socketPath)
        fast.send("GET /v1/token/notifications HTTP/1.1\r\nHost: x\r\n")
        try await Task.sleep(for: .milliseconds(300))
        // (NIO's pipelining handler used to assert here in debug builds: the daemon died of SIGILL.)
        #expect(try await harness.daemon!.stop() == 0, "\(harness.logs.suffix(600))")
        #expect(nio.isClosedByPeer(timeout: .seconds(2)))
        #expect(fast.isClosedByPeer(timeout: .seconds(2)))
        await harness.stop()
    }
}
