import BrokerTestSupport
import Foundation
import Testing

/// `serve` as users meet it: curl over the socket, the CLI client, signals, systemd notify.
@Suite("Daemon over the Unix socket", .serialized, .timeLimit(.minutes(3)), .sharedKeys)
struct DaemonTests {
    @Test("every route answers as docs/socket-api.md says, over curl --unix-socket")
    func routes() async throws {
        let harness = try await DaemonHarness(.live, extraProfiles: DaemonHarness.refusedProfile)
        try await harness.startDaemon()

        // GET /v1/token/{profile}: JSON with every field, no-store.
        let headers = try await harness.curl("/v1/token/notifications", ["-D", "-"]).output
        #expect(headers.hasPrefix("HTTP/1.1 200 OK"))
        #expect(headers.lowercased().contains("cache-control: no-store"))
        #expect(headers.lowercased().contains("content-type: application/json"))
        let (status, body) = try await harness.request("/v1/token/notifications")
        #expect(status == 200)
        let token = try harness.json(body)
        #expect(Set(token.keys) == ["access_token", "token_type", "expires_in", "expires_at", "scope", "profile", "kind"])
        #expect(token["token_type"] as? String == "Bearer")
        #expect(token["kind"] as? String == "altinn")
        #expect(token["profile"] as? String == "notifications")
        #expect(token["scope"] as? String == "altinn:serviceowner/notifications.create")
        let expiresIn = try #require(token["expires_in"] as? Int)
        #expect((1780...1800).contains(expiresIn))
        let expiresAt = try #require(token["expires_at"] as? String)
        #expect(expiresAt.hasSuffix("Z") && ISO8601DateFormatter().date(from: expiresAt) != nil)
        let accessToken = try #require(token["access_token"] as? String)

        // Accept: text/plain gets the bare token.
        let plain = try await harness.request("/v1/token/notifications", ["-H", "Accept: text/plain"])
        #expect(plain.status == 200 && plain.body == accessToken)
        #expect(try await harness.request("/v1/token/notifications?min_valid=600").status == 200)

        // Errors, each with its code.
        func error(_ path: String, _ extra: [String] = []) async throws -> (Int, String?, [String: Any]) {
            let (status, body) = try await harness.request(path, extra)
            let object = try harness.json(body)
            return (status, object["error"] as? String, object)
        }
        #expect(try await error("/v1/token/nope").0 == 404)
        #expect(try await error("/v1/token/nope").1 == "unknown_profile")
        #expect(try await error("/v1/token/notifications?min_valid=abc").1 == "invalid_request")
        #expect(try await error("/v1/token/notifications?min_valid=7200").0 == 400)
        let rejected = try await error("/v1/token/refused")
        #expect(rejected.0 == 502 && rejected.1 == "upstream_rejected")
        let upstream = try #require(rejected.2["upstream"] as? [String: Any])
        #expect(upstream["status"] as? Int == 400)
        #expect(upstream["error"] as? String == "invalid_scope")
        #expect((upstream["error_description"] as? String)?.hasPrefix("MP-140") == true)
        #expect(try await error("/v1/token/notifications", ["-X", "DELETE"]).0 == 405)
        #expect(try await error("/v1/nothing").0 == 404)
        #expect(try await error("/v1/platform-access-token/x").1 == "unknown_profile")

        // POST .../refresh: a new token, then 429 with Retry-After.
        let refreshed = try await harness.request("/v1/token/notifications/refresh", ["-X", "POST"])
        #expect(refreshed.status == 200)
        #expect(try harness.json(refreshed.body)["access_token"] as? String != accessToken)
        let limited = try await harness.curl("/v1/token/notifications/refresh", ["-X", "POST", "-D", "-"]).output
        #expect(limited.hasPrefix("HTTP/1.1 429"))
        #expect(limited.lowercased().contains("retry-after: "))
        #expect(limited.contains("\"refresh_rate_limited\""))

        // /v1/profiles, /healthz, /readyz, /metrics.
        let profiles = try await harness.json(try harness.request("/v1/profiles").body)["profiles"] as? [[String: Any]]
        #expect(profiles?.compactMap { $0["profile"] as? String }.sorted() == ["notifications", "refused"])
        #expect(profiles?.first { $0["profile"] as? String == "notifications" }?["state"] as? String == "ready")
        await #expect(!(try harness.request("/v1/profiles").body.contains(accessToken)))
        #expect(try await harness.request("/healthz") == (200, "ok\n"))
        let readiness = try await harness.request("/readyz")
        #expect(readiness.status == 503, "profile refused never gets a token")
        #expect(try harness.json(readiness.body)["failing"] as? [String: Any] != nil)
        let metrics = try await harness.request("/metrics")
        #expect(metrics.status == 200)
        #expect(metrics.body.contains("maskinporten_broker_tokens_served_total{profile=\"notifications\"}"))
        #expect(metrics.body.contains("maskinporten_broker_requests_total{route=\"token\",status=\"502\"} 1"))
        #expect(!metrics.body.contains(accessToken.prefix(30)))
        // Upstream calls by endpoint and outcome, their latency, and refresh failures.
        #expect(metrics.body.contains("maskinporten_broker_upstream_calls_total{endpoint=\"maskinporten\",outcome=\"ok\"}"))
        #expect(metrics.body.contains("maskinporten_broker_upstream_calls_total{endpoint=\"maskinporten\",outcome=\"rejected\"}"))
        #expect(metrics.body.contains("maskinporten_broker_upstream_calls_total{endpoint=\"altinn\",outcome=\"ok\"}"))
        #expect(metrics.body.contains("maskinporten_broker_upstream_latency_seconds_bucket{endpoint=\"maskinporten\""))
        #expect(metrics.body.contains("maskinporten_broker_refresh_failures_total{profile=\"refused\"}"))
        #expect(metrics.body.contains("maskinporten_broker_profile_state{profile=\"notifications\",state=\"ready\"} 1"))

        // The audit log names the caller and the fingerprint, never the token.
        let log = try await harness.waitForLog(containing: "exe=/usr/bin/curl")
        #expect(log.contains("token handed out"))
        #expect(!log.contains(accessToken.prefix(30)))
        await harness.stop()
    }

    @Test("a profile whose key cannot be used answers 503 profile_unavailable, and the others are served")
    func brokenProfileDoesNotStopTheOthers() async throws {
        let harness = try await DaemonHarness(
            extraProfiles: DaemonHarness.profile("broken", keyFile: "loose.jwk"))
        try harness.directory.write("loose.jwk", DaemonHarness.key.encodedJwk(kid: "daemon-kid", alg: nil), mode: 0o644)
        try await harness.startDaemon()
        #expect(try await harness.request("/v1/token/notifications").status == 200)
        let broken = try await harness.request("/v1/token/broken")
        #expect(broken.status == 503)
        let body = try harness.json(broken.body)
        #expect(body["error"] as? String == "profile_unavailable")
        #expect((body["error_description"] as? String)?.contains("chmod 600") == true)
        let readiness = try await harness.json(try harness.request("/readyz").body)
        #expect((readiness["failing"] as? [String: Any])?["broken"] != nil)
        try await harness.waitForLog(containing: "cannot be served")
        await harness.stop()
    }

    @Test("metrics_listen serves /metrics, and nothing else, over TCP")
    func metricsListener() async throws {
        let harness = try await DaemonHarness()
        // Below Linux's ephemeral range (32768-60999), where the other tests' connections and
        // port-0 listeners take theirs: a port from there was once taken between choice and bind.
        let port = Int.random(in: 20_000..<32_000)
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try harness.writeConfig(raw: "metrics_listen: 127.0.0.1:\(port)\n" + config)
        try await harness.startDaemon()
        _ = try await harness.request("/v1/token/notifications")
        var metrics = ""
        for _ in 0..<50 where !metrics.contains("maskinporten_broker_tokens_served_total") {
            metrics = await (try? Command.run("curl", ["-sS", "--max-time", "5", "http://127.0.0.1:\(port)/metrics"]))?.output ?? ""
            if !metrics.contains("maskinporten_broker_tokens_served_total") { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(metrics.contains("maskinporten_broker_tokens_served_total{profile=\"notifications\"} 1"))
        let other = try await Command.run("curl", ["-sS", "--max-time", "5", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)/v1/token/notifications"]).output
        #expect(other.hasSuffix("\n404"))
        #expect(!other.contains("access_token"))
        await harness.stop()
    }

    @Test("token and health: the CLI client, exit codes and $MASKINPORTEN_BROKER_SOCKET")
    func commandLineClient() async throws {
        let harness = try await DaemonHarness(.live)
        try await harness.startDaemon()
        let token = try await BrokerExecutable.run(["token", "notifications", "--socket", harness.socketPath])
        #expect(token.status == 0)
        #expect(token.output.hasSuffix("\n") && token.output.split(separator: ".").count == 3)
        var environment = ProcessInfo.processInfo.environment
        environment["MASKINPORTEN_BROKER_SOCKET"] = harness.socketPath
        let json = try await BrokerExecutable.run(["token", "notifications", "--json", "--min-valid", "60"], environment: environment)
        #expect(json.status == 0)
        #expect(json.output.contains("\"kind\":\"altinn\""))
        let unknown = try await BrokerExecutable.run(["token", "nope"], environment: environment)
        #expect(unknown.status == 1)
        #expect(unknown.output.isEmpty)
        #expect(unknown.errorOutput == "maskinporten-broker token: nope: HTTP 404 unknown_profile: no profile named \"nope\"\n")
        #expect(try await BrokerExecutable.run(["health"], environment: environment).output == "ok\n")
        #expect(try await BrokerExecutable.run(["health", "--ready"], environment: environment).status == 0)
        // maskinporten-brokerd answers the same, byte for byte (both run BrokerClient).
        for arguments in [["token", "nope"], ["token", "notifications", "--json", "--min-valid=60"], ["health", "--ready"]] {
            let front = try await BrokerExecutable.run(arguments, environment: environment)
            let full = try await Command.run(try BrokerExecutable.daemonPath, arguments, environment: environment)
            #expect(front.status == full.status && front.errorOutput == full.errorOutput, "\(arguments)")
            #expect(front.output.prefix(40) == full.output.prefix(40), "\(arguments)")
        }

        // SIGTERM: exit 0, socket file gone, probes fail with one line.
        #expect(try await harness.daemon!.stop() == 0)
        #expect(!FileManager.default.fileExists(atPath: harness.socketPath))
        let down = try await BrokerExecutable.run(["health", "--socket", harness.socketPath])
        #expect(down.status == 1)
        #expect(down.output.hasPrefix("not healthy: cannot connect to \(harness.socketPath)"))
        #expect(down.output.split(separator: "\n").count == 1)
        let noToken = try await BrokerExecutable.run(["token", "notifications", "--socket", harness.socketPath])
        #expect(noToken.status == 1 && noToken.errorOutput.contains("is maskinporten-broker running?"))
        await harness.stop()
    }

    @Test("the socket gets the configured mode and group; a stale file is replaced; a second daemon is refused")
    func socketFile() async throws {
        let group = "mpbtest\(Int.random(in: 1000...9999))"
        try await Command.run("groupadd", [group])
        defer { _ = try? Command.runBlocking("groupdel", [group]) }
        let harness = try await DaemonHarness(.live, socketMode: "0660", socketGroup: group)
        // A stale socket file from a crashed daemon.
        try FileManager.default.createDirectory(atPath: harness.directory.path("run"), withIntermediateDirectories: true)
        let stale = try RawSocket.datagramListener(harness.socketPath)
        _ = stale
        try await harness.startDaemon()
        let info = try FileManager.default.attributesOfItem(atPath: harness.socketPath)
        #expect(info[.type] as? FileAttributeType == .typeSocket)
        #expect(info[.posixPermissions] as? Int == 0o660)
        let gid = try await Command.run("getent", ["group", group]).output.split(separator: ":")[2]
        #expect(info[.groupOwnerAccountID] as? Int == Int(gid))

        let second = try await BrokerExecutable.run(["serve", "--config", harness.configPath])
        #expect(second.status == 1)
        #expect(second.errorOutput.contains("another process is already serving on \(harness.socketPath)"))
        #expect(!(second.output + second.errorOutput).contains("token obtained"), "the second daemon must fail before fetching")
        #expect(try await harness.request("/healthz").status == 200)
        await harness.stop()
    }

    @Test(
        "SIGHUP: a broken configuration is refused and serving goes on; a new profile is served; unchanged profiles keep their token; a broken key file keeps the key in use"
    )
    func reload() async throws {
        let harness = try await DaemonHarness(.live)
        try await harness.startDaemon()
        let first = try await harness.json(try harness.request("/v1/token/notifications").body)["access_token"] as? String
        let good = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try harness.directory.write("broker.yaml", good + "\n  broken: [\n", mode: 0o644)
        kill(harness.daemon!.pid, SIGHUP)
        try await harness.waitForLog(containing: "reload refused")
        #expect(try await harness.request("/v1/token/notifications").status == 200)

        try harness.directory.write(
            "broker.yaml",
            good + """

                  second:
                    environment: local
                    client_id: \(DaemonHarness.clientID)
                    scopes: [altinn:serviceowner/notifications.create]
                    key:
                      encoded_jwk_file: notifications.jwk
                """, mode: 0o644)
        kill(harness.daemon!.pid, SIGHUP)
        var served = false
        for _ in 0..<300 where !served {
            served = try await harness.request("/v1/token/second").status == 200
            if !served { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(served)
        let again = try await harness.json(try harness.request("/v1/token/notifications").body)["access_token"] as? String
        #expect(again == first, "an unchanged profile keeps its cached token across a reload")

        // A key file that no longer loads: both profiles keep the key (and token) in use.
        let key = try Data(contentsOf: URL(fileURLWithPath: harness.directory.path("notifications.jwk")))
        try harness.directory.write("notifications.jwk", "-----BEGIN PRIVATE KEY-----\nbroken\n", mode: 0o600)
        kill(harness.daemon!.pid, SIGHUP)
        try await harness.waitForLog(containing: "the key in use is kept")
        for _ in 0..<100 where harness.logs.components(separatedBy: "msg=reloaded").count < 3 {
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = harness.logs
        #expect(log.contains("level=error msg=\"the new key cannot be used; the key in use is kept\""), "\(log)")
        #expect(!log.contains("msg=\"cannot be served\""), "\(log)")
        let kept = try await harness.json(try harness.request("/v1/token/notifications").body)["access_token"] as? String
        #expect(kept == first, "the profile keeps its key and its token")
        #expect(try await harness.request("/v1/token/second").status == 200)
        let metrics = try await harness.request("/metrics").body
        // Once for SIGHUP, and once more if the key-file watch read the file first.
        #expect(
            metrics.contains("maskinporten_broker_key_reload_failures_total{profile=\"notifications\"} 1")
                || metrics.contains("maskinporten_broker_key_reload_failures_total{profile=\"notifications\"} 2"), "\(metrics)")
        try harness.directory.write("notifications.jwk", key, mode: 0o600)
        await harness.stop()
    }

    @Test("SIGTERM stops at once, even while the first fetch hangs, with exit 0 and no error or warning line")
    func quietStop() async throws {
        for hanging in [false, true] {
            let harness = try await DaemonHarness(.live)
            if hanging {
                try await DaemonHarness.curlHTTP("-X", "POST", "--data", #"{"hang":true,"count":10}"#, "\(harness.emulatorURL)/_emulator/faults/token")
            }
            try await harness.startDaemon()
            try await harness.waitForLog(containing: hanging ? "msg=starting" : "msg=ready")
            let asked = ContinuousClock.now
            #expect(try await harness.daemon!.stop() == 0)
            // Under the 10 s the first fetches may take before READY.
            #expect(ContinuousClock.now - asked < .seconds(5), "hanging: \(hanging)")
            let lines = harness.logs.split(separator: "\n")
            #expect(!lines.contains { $0.contains("level=error") || $0.contains("level=warning") }, "\(harness.logs)")
            #expect(lines.contains { $0.contains("msg=stopping") }, "\(harness.logs)")
            await harness.stop()
        }
    }

    @Test("NOTIFY_SOCKET receives READY=1, RELOADING=1 on SIGHUP, and STOPPING=1 on SIGTERM")
    func systemdNotify() async throws {
        let harness = try await DaemonHarness(.live)
        let notifyPath = harness.directory.path("notify.sock")
        let notify = try RawSocket.datagramListener(notifyPath)
        try await harness.startDaemon(environment: ["NOTIFY_SOCKET": notifyPath, "WATCHDOG_USEC": "400000"])
        var ready = ""
        for _ in 0..<10 where !(ready.contains("READY=1") && ready.contains("WATCHDOG=1")) {
            ready += notify.receive(timeout: .seconds(2))
        }
        #expect(ready.contains("READY=1"))
        #expect(ready.contains("WATCHDOG=1"), "the watchdog is petted at half of WATCHDOG_USEC")
        #expect(ready.contains("STATUS=serving 1 profile: 1 ready"))
        kill(harness.daemon!.pid, SIGHUP)
        var reloading = ""
        for _ in 0..<10 where !reloading.contains("RELOADING=1") {
            reloading += notify.receive(timeout: .seconds(2))
        }
        #expect(reloading.contains("RELOADING=1"))
        #expect(reloading.contains("MONOTONIC_USEC="))
        kill(harness.daemon!.pid, SIGTERM)
        var stopping = ""
        for _ in 0..<5 where !stopping.contains("STOPPING=1") {
            stopping += notify.receive(timeout: .seconds(3))
        }
        #expect(stopping.contains("STOPPING=1"))
        #expect(try await harness.daemon!.stop() == 0)
        await harness.stop()
    }

    @Test("systemd-socket-activate: the daemon serves on the socket it is handed, and leaves the file to systemd")
    func socketActivation() async throws {
        let harness = try await DaemonHarness(.live)
        try FileManager.default.createDirectory(atPath: harness.directory.path("run"), withIntermediateDirectories: true)
        let activate = try await Command.run("sh", ["-c", "command -v systemd-socket-activate"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        try await harness.startDaemon(
            arguments: ["-l", harness.socketPath, try BrokerExecutable.path, "serve", "--config", harness.configPath], executable: activate,
            waitForSocket: false)
        // systemd-socket-activate starts the daemon on the first connection.
        try await harness.waitUntilServing()
        #expect(try await harness.request("/v1/token/notifications").status == 200)
        #expect(harness.daemon!.errorOutput.contains("Execing") || harness.daemon!.errorOutput.contains("Listening"))
        _ = try await harness.daemon!.stop()
        await harness.stop()
    }
}
