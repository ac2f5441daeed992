import BrokerTestSupport
import Foundation
import Testing

/// Upstream through a real HTTP proxy (Debian's tinyproxy, started by the test) to the
/// emulator serving HTTPS under this machine's host name (loopback names never go through a
/// proxy) with a certificate from the test's CA.
@Suite("Upstream through an HTTP proxy", .timeLimit(.minutes(3)), .sharedKeys)
struct ProxyTests {
    /// tinyproxy on a free loopback port, logging every CONNECT.
    final class Tinyproxy: @unchecked Sendable {
        let directory: TemporaryDirectory
        let port: Int
        private(set) var process: RunningProcess?
        /// Everything the proxies started on this port logged, the stopped ones' too.
        private var earlier = ""

        init(port: Int? = nil) async throws {
            directory = try TemporaryDirectory(prefix: "tinyproxy")
            if let port {
                self.port = port
            } else {
                self.port = try await Self.freePort()
            }
        }

        /// Starts it with `BasicAuth` when `credentials` are given, and allowing CONNECT to
        /// `connectPort` only when it is given (tinyproxy answers 403 to the others).
        func start(credentials: (user: String, password: String)? = nil, connectPort: Int? = nil) async throws {
            var lines = ["Port \(port)", "Listen 127.0.0.1", "Timeout 30", "LogLevel Connect", "MaxClients 50", "User nobody", "Group nogroup"]
            if let credentials { lines.append("BasicAuth \(credentials.user) \(credentials.password)") }
            if let connectPort { lines.append("ConnectPort \(connectPort)") }
            let config = try directory.write("tinyproxy.conf", lines.joined(separator: "\n") + "\n", mode: 0o644)
            let executable = try Command.which("tinyproxy")
            process = try RunningProcess(executable, ["-d", "-c", config])
            let end = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < end {
                if (try? await Command.run("curl", ["-s", "-o", "/dev/null", "--max-time", "2", "http://127.0.0.1:\(port)/"]))?.status == 0 { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            throw TestSupportError("tinyproxy did not start on port \(port): \(log)")
        }

        func stop() async {
            if let process {
                _ = try? await process.stop(SIGKILL)
                earlier += process.output + process.errorOutput
            }
            process = nil
        }

        var log: String { earlier + (process.map { $0.output + $0.errorOutput } ?? "") }

        /// The CONNECT requests it logged.
        var connects: [String] {
            log.split(separator: "\n").filter { $0.contains("Request (file descriptor") && $0.contains("CONNECT ") }.map(String.init)
        }

        /// The CONNECT count once the log has stopped growing for 300 ms.
        func settledConnects() async throws -> Int {
            var last = connects.count
            var stableSince = ContinuousClock.now
            let end = ContinuousClock.now + .seconds(5)
            while ContinuousClock.now < end {
                try await Task.sleep(for: .milliseconds(50))
                let now = connects.count
                if now != last {
                    last = now
                    stableSince = ContinuousClock.now
                } else if ContinuousClock.now - stableSince >= .milliseconds(300) {
                    break
                }
            }
            return last
        }

        static func freePort() async throws -> Int {
            let script = "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"
            guard let port = Int(try await Command.run("python3", ["-c", script]).output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
                throw TestSupportError("no free port")
            }
            return port
        }
    }

    /// This machine's host name, which must resolve (tinyproxy looks it up): the emulator's
    /// name, not a loopback one, so that the broker's calls to it go through the proxy. (An
    /// IP address would not do: through a proxy the client checks the certificate
    /// against a host name only.)
    static func machineName() async throws -> String {
        let name = try await Command.run("hostname", []).output.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !name.isEmpty, try await Command.run("getent", ["hosts", name]).status == 0 else {
            throw TestSupportError("this machine's host name (\(name)) does not resolve (getent hosts): the proxy tests name the emulator by it")
        }
        return name
    }

    /// The emulator on TLS under the machine's name, and a daemon configured with `proxy`.
    func harness(proxy: String) async throws -> DaemonHarness {
        let name = try await Self.machineName()
        let harness = try await DaemonHarness(.live, tls: (try await TestCA.make(for: name), name))
        harness.environmentExtra = "    proxy: \(proxy)"
        try harness.writeConfig()
        return harness
    }

    func restart(_ harness: DaemonHarness, environment: [String: String] = [:]) async throws {
        if let daemon = harness.daemon { _ = try await daemon.stop() }
        try harness.writeConfig()
        try await harness.startDaemon(environment: environment)
    }

    @Test("tokens come through the proxy (its log shows the CONNECT); no_proxy goes around it; check-config names the proxy and its source")
    func throughTheProxy() async throws {
        let proxy = try await Tinyproxy()
        try await proxy.start()
        defer { Task { await proxy.stop() } }
        let harness = try await harness(proxy: "http://127.0.0.1:\(proxy.port)")
        harness.profileExtra = "    gateway: {}"
        try harness.writeConfig()
        try await harness.startDaemon()
        let answer = try await harness.request("/v1/token/notifications")
        #expect(answer.status == 200, "\(answer.body) \(harness.logs)")
        let target = String(harness.emulatorURL.dropFirst("https://".count))
        #expect(proxy.connects.contains { $0.contains("CONNECT \(target) ") }, "tinyproxy's log: \(proxy.log)")
        // The gateway's calls go the same way, on the one client's tunnels: the one the token's
        // call left open on that event loop, or a new one. (tinyproxy writes its log a moment
        // after each request: counted once it has settled.) That they cannot go around the proxy
        // is shown at the end, with the proxy stopped.
        let tunnels = try await proxy.settledConnects()
        let order = try await harness.request(
            "/v1/api/notifications/notifications/api/v1/future/orders",
            ["--data", #"{"idempotencyId":"p-1","recipient":{"recipientOrganization":{"orgNumber":"991825827","channelSchema":"Email"}}}"#])
        #expect(order.status == 201, "\(order.body)")
        #expect((tunnels...tunnels + 1).contains(try await proxy.settledConnects()), "\(proxy.log)")
        #expect(proxy.connects.allSatisfy { !$0.contains("): CONNECT ") || $0.contains("): CONNECT \(target) ") }, "\(target) \(proxy.connects)")
        let check = try await BrokerExecutable.run(["check-config", "--config", harness.configPath])
        #expect(
            check.output.contains("upstream:     through the proxy http://127.0.0.1:\(proxy.port) (from environments.local.proxy in the configuration)"),
            "\(check.output)")

        // The daemon's environment instead of the configuration, with the emulator in no_proxy.
        harness.environmentExtra = ""
        let address = String(target.split(separator: ":")[0])
        let environment = ["https_proxy": "http://127.0.0.1:\(proxy.port)", "no_proxy": "example.com,\(address)"]
        try await restart(harness, environment: environment)
        let before = proxy.connects.count
        #expect(try await harness.request("/v1/token/notifications/refresh", ["-X", "POST"]).status == 200, "\(harness.logs)")
        #expect(proxy.connects.count == before, "no_proxy names the emulator: no CONNECT for it. \(proxy.connects)")
        let viaEnvironment = try await BrokerExecutable.run(["check-config", "--config", harness.configPath], environment: environment)
        #expect(
            viaEnvironment.output.contains(
                "through the proxy http://127.0.0.1:\(proxy.port) (from https_proxy in the daemon's environment); directly: example.com, \(address) (from no_proxy in the daemon's environment), and loopback"
            ), "\(viaEnvironment.output)")

        // Without no_proxy, the environment's proxy is used.
        try await restart(harness, environment: ["HTTPS_PROXY": "http://127.0.0.1:\(proxy.port)"])
        #expect(try await harness.request("/v1/token/notifications").status == 200, "\(harness.logs)")
        #expect(proxy.connects.count > before, "\(proxy.log)")

        // The proxy gone: a gateway call fails at the proxy, named, and nothing reaches the
        // emulator around it. (The tunnels it held close with it; a moment lets the daemon see.)
        let received = { try await GatewayTests.seen(harness).stats["requests"] as? Int ?? -1 }
        let ordersBefore = try await received()
        await proxy.stop()
        try await Task.sleep(for: .seconds(1))
        let unreachable = try await harness.request(
            "/v1/api/notifications/notifications/api/v1/future/orders",
            ["--data", #"{"idempotencyId":"p-2","recipient":{"recipientOrganization":{"orgNumber":"991825827","channelSchema":"Email"}}}"#])
        #expect(unreachable.status == 502 && unreachable.body.contains("through the proxy http://127.0.0.1:\(proxy.port)"), "\(unreachable.body)")
        #expect(try await received() == ordersBefore, "the order went around the proxy")
        await harness.stop()
    }

    @Test("a proxy asking for credentials: 407 named with its fix; with them in the proxy URL, served; the password is in no log line")
    func proxyAuthentication() async throws {
        let password = "pw-\(UUID().uuidString.prefix(12))"
        let proxy = try await Tinyproxy()
        try await proxy.start(credentials: ("broker", password))
        defer { Task { await proxy.stop() } }
        let harness = try await harness(proxy: "http://127.0.0.1:\(proxy.port)")
        harness.secrets = [password]
        try await harness.startDaemon()
        let refused = try await harness.request("/v1/token/notifications")
        #expect(refused.status == 503 || refused.status == 502, "\(refused.body)")
        #expect(refused.body.contains("the proxy asks for credentials (HTTP 407 Proxy Authentication Required)"), "\(refused.body)")

        harness.environmentExtra = "    proxy: http://broker:\(password)@127.0.0.1:\(proxy.port)"
        try await restart(harness)
        let served = try await harness.request("/v1/token/notifications")
        #expect(served.status == 200, "\(served.body) \(harness.logs)")
        let check = try await BrokerExecutable.run(["check-config", "--config", harness.configPath])
        #expect(check.output.contains("through the proxy http://broker:***@127.0.0.1:\(proxy.port)"), "\(check.output)")
        #expect(!check.output.contains(password) && !check.errorOutput.contains(password))

        // Wrong credentials are told apart from none.
        harness.environmentExtra = "    proxy: http://broker:wrong@127.0.0.1:\(proxy.port)"
        try await restart(harness)
        let wrong = try await harness.request("/v1/token/notifications")
        #expect(wrong.body.contains("the proxy refused the credentials given"), "\(wrong.body)")
        await harness.stop()
    }

    @Test(
        "a proxy refusing the CONNECT gives unavailable with its status; the proxy stopping mid-run backs off, the cached token is served, and fetching recovers"
    )
    func refusalAndOutage() async throws {
        let proxy = try await Tinyproxy()
        try await proxy.start(connectPort: 1)
        let harness = try await harness(proxy: "http://127.0.0.1:\(proxy.port)")
        try await harness.startDaemon()
        let refused = try await harness.request("/v1/token/notifications")
        #expect(refused.status == 503 || refused.status == 502, "\(refused.body)")
        #expect(refused.body.contains("through the proxy http://127.0.0.1:\(proxy.port): the proxy refused the CONNECT to"), "\(refused.body)")
        #expect(refused.body.contains("(HTTP 403"), "\(refused.body)")
        let metrics = try await harness.request("/metrics").body
        #expect(metrics.contains("maskinporten_broker_upstream_calls_total{endpoint=\"maskinporten\",outcome=\"unavailable\"}"), "\(metrics)")

        // A proxy that lets the tunnel through: served. Then it stops.
        await proxy.stop()
        try await proxy.start()
        try await restart(harness)
        let first = try await harness.request("/v1/token/notifications")
        #expect(first.status == 200, "\(first.body) \(harness.logs)")
        // The first forced refresh since the start is taken at once (later ones once per 10 s).
        await proxy.stop()
        let forced = try await harness.request("/v1/token/notifications/refresh", ["-X", "POST"])
        #expect(forced.status == 503 || forced.status == 502, "\(forced.body)")
        #expect(forced.body.contains("the proxy could not be reached"), "\(forced.body)")
        for _ in 0..<5 {
            let cached = try await harness.request("/v1/token/notifications")
            #expect(cached.status == 200 && tokenOf(cached.body) == tokenOf(first.body), "the held token is served: \(cached.body)")
        }
        // Refreshing is failing while a token is held: degraded, with the proxy named.
        let profiles = try await harness.request("/v1/profiles").body
        #expect(profiles.contains("\"degraded\"") && profiles.contains("the proxy could not be reached"), "\(profiles)")

        // The proxy is back: the next forced refresh (after the 10 s limit) fetches through it.
        try await proxy.start()
        var recovered = false
        let end = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < end, !recovered {
            let answer = try await harness.request("/v1/token/notifications/refresh", ["-X", "POST"])
            recovered = answer.status == 200 && !answer.body.contains(tokenOf(first.body))
            if !recovered { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(recovered, "no new token through the restarted proxy: \(harness.logs)")
        await proxy.stop()
        await harness.stop()
    }

    func tokenOf(_ body: String) -> String {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else { return "?" }
        return object["access_token"] as? String ?? "?"
    }
}
