import BrokerServer
import BrokerTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The Altinn API gateway end to end: curl and the CLI over the socket, the daemon in its default
/// configuration (log level info, audit on), the emulator's Notifications API over TLS trusted
/// through `ca_file`.
@Suite("The Altinn API gateway", .timeLimit(.minutes(3)), .sharedKeys)
struct GatewayTests {
    static let ordersPath = "/notifications/api/v1/future/orders"
    /// What orders carry, which no log line may: a national identity number, a phone number and
    /// an e-mail address (made up).
    static let personal = ["01017012345", "+4799887766", "kari.nordmann@example.com"]

    static func order(_ idempotency: String) -> String {
        """
        {"idempotencyId":"\(idempotency)","sendersReference":"ref-\(idempotency)","recipient":{"recipientPerson":{"nationalIdentityNumber":"\(personal[0])",\
        "channelSchema":"EmailPreferred","emailSettings":{"subject":"Hei","body":"Ring \(personal[1]) eller skriv til \(personal[2])"}}}}
        """
    }

    /// The emulator on TLS, a daemon whose profile `notifications` has a gateway (with the
    /// emulator's test blobs reachable), an allow list of one uid that is not `nobody`, and a
    /// socket anyone may connect to. Its `timeout_seconds` leaves room for two hundred TLS
    /// handshakes on a loaded 2-core CI machine; the stall test sets a short one.
    static func harness(
        _ mode: DaemonHarness.Mode = .inProcess, gateway: String = "", extraProfiles: String = "", timeout: Int = 20,
        limits: ServerLimits = ServerLimits(), configure: (DaemonHarness) throws -> Void = { _ in }
    ) async throws -> DaemonHarness {
        let harness = try await DaemonHarness(
            mode, socketMode: "0666", allow: "      uids: [12345]", tls: (try await TestCA.make(for: "127.0.0.1"), "127.0.0.1"))
        harness.profileExtra = """
                gateway:
                  paths: [/notifications/api/v1/, /_emulator/blob/]
                  max_body_bytes: 4096
                  timeout_seconds: \(timeout)
            \(gateway)
            """
        harness.secrets = personal
        try configure(harness)
        try harness.writeConfig(socketMode: "0666", allow: "      uids: [12345]", extraProfiles: extraProfiles)
        try await harness.startDaemon(limits: limits)
        return harness
    }

    /// What the emulator's Notifications API has seen.
    static func seen(_ harness: DaemonHarness) async throws -> (stats: [String: Any], last: [String: Any]?) {
        let report = try harness.json(try await harness.emulatorCurl("\(harness.emulatorURL)/_emulator/notifications").output)
        return (report["stats"] as? [String: Any] ?? [:], report["last_request"] as? [String: Any])
    }

    /// A request through the gateway with curl: status, headers and body, as the client sees them.
    static func call(_ harness: DaemonHarness, _ method: String, _ path: String, _ extra: [String] = []) async throws -> (
        status: Int, head: String, body: String
    ) {
        let result = try await harness.curl("/v1/api/notifications" + path, ["-i", "-X", method, "--path-as-is"] + extra)
        let parts = result.output.components(separatedBy: "\r\n\r\n")
        // curl shows the 100 Continue's head before the answer's.
        let heads = parts.dropLast().filter { !$0.hasPrefix("HTTP/1.1 100") }
        let head = heads.last ?? ""
        let status = Int(head.split(separator: " ").dropFirst().first ?? "") ?? 0
        return (status, head, parts.last ?? "")
    }

    @Test("an order sent with curl and with the CLI, its status read back; the emulator gets the profile's token, the client never sees it")
    func sendOrder() async throws {
        let harness = try await Self.harness()
        do {
            let token = try await harness.request("/v1/token/notifications").body
            #expect(token.contains("access_token"))
            let issued = try harness.json(token)["access_token"] as? String ?? "missing"

            // The client's own credentials and the broker's delegation header stay behind; the
            // rest goes as it came.
            let sent = try await Self.call(
                harness, "POST", Self.ordersPath,
                [
                    "--data", Self.order("curl-1"), "-H", "Content-Type: application/json", "-H", "Authorization: Bearer forged.by.client", "-H",
                    "Cookie: session=1", "-H", "PlatformAccessToken: forged", "-H", "Idempotency-Key: k-1", "-H", "Proxy-Authorization: Basic eDp5",
                ])
            #expect(sent.status == 201, "\(sent)")
            let created = try harness.json(sent.body)
            let orderID = try #require(created["notificationOrderId"] as? String)
            #expect(!sent.head.contains(issued) && !sent.body.contains(issued), "the token reached the client")
            #expect(!sent.head.lowercased().contains("broker-error"))
            // Altinn's session cookie stays with the broker (the emulator sends one, as Altinn's
            // load balancer does).
            #expect(!sent.head.lowercased().contains("set-cookie"), "\(sent.head)")
            let (stats, last) = try await Self.seen(harness)
            #expect(stats["orders_created"] as? Int == 1)
            let names = try #require(last?["header_names"] as? [String])
            #expect(names.contains("authorization") && names.contains("idempotency-key") && names.contains("content-type"))
            for dropped in ["cookie", "platformaccesstoken", "proxy-authorization", "broker-system-user-org"] {
                #expect(!names.contains(dropped), "\(dropped) reached Altinn: \(names)")
            }
            // The emulator accepted the token it was given: the profile's, not the forged one.
            #expect(last?["token_id"] as? String != nil)
            let direct = try await harness.emulatorCurl(
                "-i", "-H", "Authorization: Bearer \(issued)", "\(harness.emulatorURL)/notifications/api/v1/future/shipment/feed")
            #expect(direct.output.lowercased().contains("set-cookie: arraffinity="), "\(direct.output)")

            // The same idempotencyId again: 200 and the same ids.
            let again = try await Self.call(harness, "POST", Self.ordersPath, ["--data", Self.order("curl-1")])
            #expect(again.status == 200)
            #expect(try harness.json(again.body)["notificationOrderId"] as? String == orderID)

            // The CLI: the body on standard output, nothing on standard error, exit 0.
            let file = try harness.directory.write("order.json", Self.order("cli-1"))
            let cli = try await Command.run(
                try BrokerExecutable.path, ["api", "notifications", Self.ordersPath, "--data", "@" + file, "--socket", harness.socketPath])
            #expect(cli.status == 0, "\(cli.errorOutput)")
            #expect(cli.errorOutput.isEmpty)
            let cliOrder = try #require(try harness.json(cli.output)["notificationOrderId"] as? String)
            let status = try await Command.run(
                try BrokerExecutable.path, ["api", "notifications", "/notifications/api/v1/orders/\(cliOrder)/status", "--socket", harness.socketPath])
            #expect(status.status == 0)
            #expect(status.output.contains("\"status\":\"Completed\""), "\(status.output)")
            // The body from standard input (`@-`); a file that cannot be read is named, exit 2,
            // and nothing is sent.
            let piped = try await Command.run(
                try BrokerExecutable.path, ["api", "notifications", Self.ordersPath, "--data", "@-", "--socket", harness.socketPath],
                input: Data(Self.order("cli-2").utf8))
            #expect(piped.status == 0, "\(piped.errorOutput)")
            #expect(try harness.json(piped.output)["notificationOrderId"] as? String != nil)
            let none = harness.directory.path("none.json")
            let missing = try await Command.run(
                try BrokerExecutable.path, ["api", "notifications", Self.ordersPath, "--data", "@" + none, "--socket", harness.socketPath])
            #expect(missing.status == 2)
            #expect(missing.errorOutput == "maskinporten-broker api: cannot read \(none): No such file or directory\n")
            // Altinn's validation error: its ProblemDetails on standard output, the status on
            // standard error, exit 1.
            let invalid = try await Command.run(
                try BrokerExecutable.path, ["api", "notifications", Self.ordersPath, "--data", "{\"recipient\":{}}", "--socket", harness.socketPath])
            #expect(invalid.status == 1)
            #expect(invalid.output.contains("\"IdempotencyId\""))
            #expect(invalid.errorOutput == "maskinporten-broker api: HTTP 400 from Altinn\n")

            // One audit line per request, with no body, query or header value in it (the last
            // request's line is awaited: lines reach the log by the writer's thread, in order).
            let logs = try await harness.waitForLog(containing: "status=400")
            let lines = logs.split(separator: "\n").filter { $0.contains("api request forwarded") }
            #expect(lines.count == 6, "\(lines)")
            #expect(lines.allSatisfy { $0.contains("profile=notifications") && $0.contains("bytes_in=") && $0.contains("uid=\(getuid())") })
            #expect(lines.contains { $0.contains("method=POST") && $0.contains("path=\(Self.ordersPath)") && $0.contains("status=201") })
            for line in lines { #expect(!line.contains("curl-1") && !line.contains("k-1") && !line.contains("forged"), "\(line)") }
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("refused before anything goes upstream: a uid not on the allow list, every path trick, a body over the limit, a profile without a gateway")
    func refusals() async throws {
        let harness = try await Self.harness(extraProfiles: DaemonHarness.refusedProfile)
        do {
            let stranger = try await Command.run(
                "runuser",
                [
                    "-u", "nobody", "--", "curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", harness.socketPath, "--data", Self.order("x"),
                    "http://localhost/v1/api/notifications" + Self.ordersPath,
                ])
            #expect(stranger.output.hasSuffix("\n403"), "\(stranger.output) \(stranger.errorOutput)")
            #expect(stranger.output.contains("\"error\":\"access_denied\""))

            for trick in [
                "/notifications/api/v1/../../authentication/api/v1/exchange/maskinporten", "/notifications/api/v1/%2e%2e/%2e%2e/authentication",
                "/notifications/api/v1/..%2F..%2Fauthentication", "/notifications/api/v1//future/orders", "/notifications/api/v1/./future/orders",
                "/notifications/api/v1/%252e%252e/x", "/authentication/api/v1/exchange/maskinporten", "/notifications/api/v10/x",
            ] {
                let answer = try await Self.call(harness, "GET", trick)
                #expect([400, 403].contains(answer.status), "\(trick): \(answer.status)")
                #expect(answer.head.contains("Broker-Error: true"), "\(trick)")
            }
            let large = try await Self.call(harness, "POST", Self.ordersPath, ["--data", String(repeating: "x", count: 5000)])
            #expect(large.status == 413)
            let chunked = try await Self.call(
                harness, "POST", Self.ordersPath, ["-H", "Transfer-Encoding: chunked", "--data", String(repeating: "y", count: 5000)])
            #expect(chunked.status == 413)
            #expect(try await Self.seen(harness).stats["requests"] as? Int == 0, "the emulator was called")

            let none = try await harness.request("/v1/api/refused" + Self.ordersPath)
            #expect(none.status == 404)
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("delegation by Broker-* headers (never sent on), and the configured Platform Access Token in place of the caller's")
    func delegationAndPlatformAccessToken() async throws {
        let harness = try await DaemonHarness(tls: (try await TestCA.make(for: "127.0.0.1"), "127.0.0.1"))
        do {
            harness.profileExtra = """
                    delegation:
                      system_user_org: any
                    gateway:
                      platform_access_token: my-app
                """
            harness.secrets = Self.personal
            try harness.writeConfig(extraProfiles: try await harness.platformAccessToken())
            try await harness.startDaemon()
            let sent = try await Self.call(
                harness, "POST", Self.ordersPath,
                ["--data", Self.order("d-1"), "-H", "Broker-System-User-Org: 910000004", "-H", "PlatformAccessToken: forged"])
            #expect(sent.status == 201, "\(sent)")
            let stats = try await harness.emulatorStats()
            #expect((stats["tokens_issued_by_organisation"] as? [String: Int])?["910000004"] == 1, "\(stats)")
            let last = try #require(try await Self.seen(harness).last)
            #expect(!(last["header_names"] as? [String] ?? []).contains("broker-system-user-org"))
            let platformToken = try #require(last["platform_access_token"] as? String)
            #expect(platformToken != "forged" && platformToken.split(separator: ".").count == 3)
            #expect(try await harness.waitForLog(containing: "variant=").contains("system_user_org=910000004"))

            // The token route's rules: a choice the profile does not offer, a malformed number.
            let consumer = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed", ["-H", "Broker-Consumer-Org: 991825827"])
            #expect(consumer.status == 400 && consumer.head.contains("Broker-Error: true"), "\(consumer)")
            let malformed = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed", ["-H", "Broker-System-User-Org: 123"])
            #expect(malformed.status == 400, "\(malformed)")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("a revoked token: one new token and one replay, 201; two hundred requests at once make one fetch; a second 401 reaches the client")
    func revokedToken() async throws {
        let harness = try await Self.harness()
        do {
            let first = try await Self.call(harness, "POST", Self.ordersPath, ["--data", Self.order("r-0")])
            #expect(first.status == 201)
            let exchanges = { try await harness.emulatorStats()["exchanges_issued"] as? Int ?? -1 }
            let before = try await exchanges()
            try await harness.emulatorCurl("-X", "POST", "--data", "{}", "\(harness.emulatorURL)/_emulator/notifications/revoke")
            let replayed = try await Self.call(harness, "POST", Self.ordersPath, ["--data", Self.order("r-1")])
            #expect(replayed.status == 201, "\(replayed)")
            #expect(try await exchanges() == before + 1)
            #expect(try await harness.waitForLog(containing: "replayed=true").contains("status=201"))

            // Two hundred at once against a revoked token: one fetch between them.
            try await harness.emulatorCurl("-X", "POST", "--data", "{}", "\(harness.emulatorURL)/_emulator/notifications/revoke")
            let many = exchanges
            let ahead = try await many()
            let list = (0..<200).map { _ in
                "url = \"http://localhost/v1/api/notifications/notifications/api/v1/future/shipment/feed?seq=0&pageSize=1\"\noutput = \"/dev/null\"\n"
            }
            let config = try harness.directory.write("parallel.curl", list.joined())
            let parallel = try await Command.run(
                "curl",
                [
                    "-sS", "--parallel", "--parallel-immediate", "--parallel-max", "200", "--unix-socket", harness.socketPath, "-w", "%{http_code}\n", "-K",
                    config,
                ])
            let codes = parallel.output.split(separator: "\n")
            #expect(codes.count == 200 && codes.allSatisfy { $0 == "200" }, "\(Set(codes)) \(parallel.errorOutput)")
            #expect(try await many() == ahead + 1, "more than one fetch for one revoked token")
            // The replays and the calls by status class, in the metrics.
            let metrics = try await harness.request("/metrics").body
            func value(_ series: String) -> Int? {
                metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Int($0.split(separator: " ").last ?? "") }
            }
            #expect((value(#"maskinporten_broker_gateway_replays_total{profile="notifications"}"#) ?? 0) >= 2, "\(metrics)")
            #expect(value(#"maskinporten_broker_gateway_requests_total{profile="notifications",method="GET",status="2xx"}"#) == 200, "\(metrics)")
            // Revoked for good: the replay is refused too, and Altinn's 401 reaches the client.
            try await harness.emulatorCurl("-X", "POST", "--data", "{\"all\":true}", "\(harness.emulatorURL)/_emulator/notifications/revoke")
            let refused = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed?seq=0")
            #expect(refused.status == 401)
            #expect(!refused.head.contains("Broker-Error"), "Altinn's own answer")
            #expect(refused.body.contains("revoked"))
            try await harness.emulatorCurl("-X", "DELETE", "\(harness.emulatorURL)/_emulator/notifications/revoke")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("graceful shutdown while a call is under way: its answer comes first")
    func shutdownWaitsForCalls() async throws {
        let harness = try await Self.harness()
        do {
            #expect(try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed").status == 200)
            try await harness.emulatorCurl("-X", "POST", "--data", "{\"delay_ms\":1500}", "\(harness.emulatorURL)/_emulator/faults/notifications")
            let before = try await Self.seen(harness).stats["requests"] as? Int ?? 0
            async let slow = Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed")
            // Stopped once Altinn has the call (and is taking 1.5 s over it), not before.
            let end = ContinuousClock.now + .seconds(10)
            while try await Self.seen(harness).stats["requests"] as? Int ?? 0 == before, ContinuousClock.now < end {
                try await Task.sleep(for: .milliseconds(20))
            }
            let started = ContinuousClock.now
            await harness.inProcess?.stop()
            let answer = try await slow
            #expect(answer.status == 200, "\(answer)")
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(harness.logs.contains("api request forwarded") && !harness.logs.contains("incomplete=true"), "\(harness.logs)")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("Altinn gone: 502; Altinn stalled: 504 at timeout_seconds; both the broker's own errors")
    func upstreamFailures() async throws {
        let harness = try await Self.harness(timeout: 2)
        do {
            #expect(try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed").status == 200)
            try await harness.emulatorCurl("-X", "POST", "--data", "{\"drop\":true}", "\(harness.emulatorURL)/_emulator/faults/notifications")
            let dropped = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed")
            #expect(dropped.status == 502, "\(dropped)")
            #expect(dropped.head.contains("Broker-Error: true") && dropped.body.contains("upstream_unavailable"))

            try await harness.emulatorCurl("-X", "POST", "--data", "{\"hang\":true}", "\(harness.emulatorURL)/_emulator/faults/notifications")
            let started = ContinuousClock.now
            let stalled = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed")
            let took = ContinuousClock.now - started
            #expect(stalled.status == 504, "\(stalled)")
            #expect(stalled.body.contains("upstream_timeout") && stalled.body.contains("within 2 s"))
            #expect(took >= .milliseconds(1900) && took < .seconds(6), "\(took)")
            try await harness.emulatorCurl("-X", "DELETE", "\(harness.emulatorURL)/_emulator/faults")

            // Altinn's own errors are Altinn's (no Broker-Error), and after the dropped and the
            // stalled connections the next calls go through again.
            try await harness.emulatorCurl("-X", "POST", "--data", "{\"status\":503}", "\(harness.emulatorURL)/_emulator/faults/notifications")
            let unavailable = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed")
            #expect(unavailable.status == 503 && !unavailable.head.contains("Broker-Error") && unavailable.body.contains("injected fault"), "\(unavailable)")
            try await harness.emulatorCurl("-X", "DELETE", "\(harness.emulatorURL)/_emulator/faults")

            // An answer that comes slowly: its 100 Continue is not the caller's, its head comes
            // on its own, its body chunked in pieces, all passed on whole and byte for byte.
            let whole = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed")
            let trickle = "{\"trickle\":true,\"count\":1}"
            try await harness.emulatorCurl("-X", "POST", "--data", trickle, "\(harness.emulatorURL)/_emulator/faults/notifications")
            let slow = try await harness.curl("/v1/api/notifications/notifications/api/v1/future/shipment/feed", ["-i", "--raw"])
            let slowParts = slow.output.components(separatedBy: "\r\n\r\n")
            #expect(!slow.output.contains("100 Continue"), "\(slow.output)")
            #expect(
                slowParts.first?.hasPrefix("HTTP/1.1 200") == true && slowParts.first?.lowercased().contains("transfer-encoding: chunked") == true,
                "\(slow.output)")
            // The chunks as Altinn framed them, ending with the last, empty one.
            #expect(slow.output.hasSuffix("\r\n0\r\n\r\n") && slowParts.count == 3, "\(slow.output)")
            try await harness.emulatorCurl("-X", "POST", "--data", trickle, "\(harness.emulatorURL)/_emulator/faults/notifications")
            let decoded = try await harness.curl("/v1/api/notifications/notifications/api/v1/future/shipment/feed")
            #expect(decoded.output == whole.body && !whole.body.isEmpty, "\(decoded.output)")
            for index in 0..<3 {
                let after = try await Self.call(harness, "GET", "/notifications/api/v1/future/shipment/feed")
                #expect(after.status == 200, "call \(index) after the faults: \(after)")
            }
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test("a 50 MB answer streams through with the daemon's memory bounded")
    func largeAnswer() async throws {
        let harness = try await Self.harness(.live)
        do {
            let pid = try #require(harness.daemon?.pid)
            func rss() -> Int {
                let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
                let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
                return Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0
            }
            // Warm: the connection pool and TLS made once.
            #expect(try await Self.call(harness, "GET", "/_emulator/blob/65536").body.count == 65536)
            let baseline = rss()
            let size = 50 * 1024 * 1024
            async let transfer = harness.curl("/v1/api/notifications/_emulator/blob/\(size)", ["-o", "/dev/null", "-w", "%{size_download} %{http_code}"])
            var highest = baseline
            for _ in 0..<400 {
                highest = max(highest, rss())
                try await Task.sleep(for: .milliseconds(10))
            }
            let result = try await transfer
            highest = max(highest, rss())
            #expect(result.output == "\(size) 200", "\(result.output) \(result.errorOutput)")
            #expect(highest - baseline < 24 * 1024, "RSS grew by \(highest - baseline) KiB while streaming 50 MB")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test(
        "the fast path's kept connections: reused while fresh, not once idle past the limit; pools let go close theirs; an answer pausing past the limit between reads is ended, a caller reading slowly is not"
    )
    func keptConnections() async throws {
        // The limits made short (30 s, 300 s and 64 pools as shipped), as the tests of the
        // socket's own timeouts do.
        var limits = ServerLimits()
        limits.gatewayIdleReuse = .seconds(2)
        limits.gatewayIdleRead = .seconds(2)
        limits.gatewayPools = 1
        // A second environment on the same Altinn with its own client (another ca_file path):
        // its calls go through another pool.
        let harness = try await Self.harness(
            extraProfiles: DaemonHarness.profile("second", environment: "second", extra: "    gateway:\n      paths: [/notifications/api/v1/]"),
            limits: limits
        ) { harness in
            let copy = harness.directory.path("ca-copy.pem")
            try FileManager.default.copyItem(atPath: try #require(harness.emulatorCA).caFile, toPath: copy)
            harness.environmentExtra = """
                  second:
                    maskinporten_issuer: \(harness.emulatorURL)/
                    altinn_platform: \(harness.emulatorURL)
                    ca_file: \(copy)
                """
        }
        do {
            // The fast path sends only with a token held: a call before it goes to NIO's path, and
            // its connection with it.
            for profile in ["notifications", "second"] { #expect(try await harness.request("/v1/token/\(profile)").status == 200) }
            // One connection to the socket throughout: its calls are one loop's.
            let client = try RawSocket.connect(harness.socketPath)
            // The connection Altinn got the call on, as the emulator's answer names it: read
            // from the answer, so that no other call comes between two calls on a kept connection.
            func feed(_ profile: String) throws -> Int {
                client.send("GET /v1/api/\(profile)/notifications/api/v1/future/shipment/feed HTTP/1.1\r\nHost: localhost\r\n\r\n")
                let answer = client.receive(untilCount: 1, of: "\r\n\r\n")
                #expect(answer.hasPrefix("HTTP/1.1 200"), "\(answer)")
                let line = answer.split(separator: "\r\n").first { $0.lowercased().hasPrefix("emulator-connection:") }
                return try #require(line.flatMap { Int($0.split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "") }, "\(answer)")
            }
            func open() async throws -> [Int] {
                let connections = try harness.json(try await harness.emulatorCurl("\(harness.emulatorURL)/_emulator/connections").output)
                return connections["open"] as? [Int] ?? []
            }
            let first = try feed("notifications")
            #expect(try feed("notifications") == first, "a kept connection is used again")
            try await Task.sleep(for: .seconds(3))
            let fresh = try feed("notifications")
            #expect(fresh != first, "a connection idle past the limit is not used again")
            #expect(try await open().contains(first) == false, "and it was closed")
            #expect(try await open().contains(fresh))

            // The other environment's pool: the loop keeps one pool, so the first one's go.
            let other = try feed("second")
            #expect(other != fresh)
            #expect(try await open().contains(fresh) == false, "a pool let go closes its kept connections")
            let again = try feed("notifications")
            #expect(again != fresh && again != other)
            #expect(try await open().contains(other) == false)

            // Altinn pausing 3.5 s inside its answer: ended 2 s after its last bytes; pausing
            // 0.5 s at a time, for longer than 2 s in all: passed on whole.
            let trickle = { (gap: Int) in "{\"trickle\":true,\"gap_ms\":\(gap),\"count\":1}" }
            let path = "/v1/api/notifications/notifications/api/v1/future/shipment/feed"
            try await harness.emulatorCurl("-X", "POST", "--data", trickle(3500), "\(harness.emulatorURL)/_emulator/faults/notifications")
            let started = ContinuousClock.now
            let stalled = try await harness.curl(path, ["-i", "--raw", "--max-time", "40"])
            let took = ContinuousClock.now - started
            // The head after 3.5 s, then 2 s: ended at 5.5 s, long before curl's 40 s.
            #expect(took >= .milliseconds(5400) && took < .seconds(20), "\(took)")
            #expect(stalled.status != 0 && stalled.output.hasPrefix("HTTP/1.1 200"), "\(stalled.output) \(stalled.errorOutput)")
            #expect(!stalled.output.hasSuffix("\r\n0\r\n\r\n"), "an answer given up is not ended as if whole: \(stalled.output)")
            _ = try await harness.waitForLog(containing: "incomplete=true")
            try await harness.emulatorCurl("-X", "POST", "--data", trickle(500), "\(harness.emulatorURL)/_emulator/faults/notifications")
            let slow = try await harness.curl(path, ["-i", "--raw"])
            #expect(slow.status == 0 && slow.output.hasSuffix("\r\n0\r\n\r\n"), "\(slow.output) \(slow.errorOutput)")

            // A caller that reads nothing for 5 s: Altinn waits on the broker meanwhile, which is
            // not Altinn pausing. 32 MB: more than every buffer on the way holds.
            let size = 32 << 20
            let reader = try await Command.run(
                "sh",
                [
                    "-c",
                    "curl -sS --max-time 60 --unix-socket \"$0\" http://localhost/v1/api/notifications/_emulator/blob/\(size) | { sleep 5; wc -c; }",
                    harness.socketPath,
                ])
            #expect(reader.output.trimmingCharacters(in: .whitespacesAndNewlines) == "\(size)", "\(reader.output) \(reader.errorOutput)")
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }
}
