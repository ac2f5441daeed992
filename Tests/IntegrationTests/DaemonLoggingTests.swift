import BrokerTestSupport
import Foundation
import Testing

@Suite("Daemon logging and process hardening", .serialized, .timeLimit(.minutes(2)), .sharedKeys)
struct DaemonLoggingTests {
    @Test("under systemd (JOURNAL_STREAM) lines carry syslog priorities and no timestamp; otherwise logfmt with timestamps")
    func formats() async throws {
        let journald = try await DaemonHarness(.live)
        try await journald.startDaemon(environment: ["JOURNAL_STREAM": "8:12345"])
        _ = try await journald.request("/v1/token/notifications")
        let journalLines = try await journald.waitForLog(containing: "token handed out").split(separator: "\n")
        #expect(!journalLines.isEmpty)
        #expect(journalLines.allSatisfy { $0.hasPrefix("<") && $0.dropFirst().first.map { ("2"..."7").contains($0) } == true }, "\(journalLines.prefix(3))")
        #expect(journalLines.contains { $0.hasPrefix("<6>token handed out ") && $0.contains("profile=notifications") })
        #expect(!journalLines.contains { $0.contains("ts=") })
        await journald.stop()

        let plain = try await DaemonHarness(.live)
        try await plain.startDaemon()
        _ = try await plain.request("/v1/token/notifications")
        let lines = try await plain.waitForLog(containing: "token handed out").split(separator: "\n")
        #expect(
            lines.allSatisfy { $0.hasPrefix("ts=20") && $0.split(separator: " ")[0].hasSuffix("Z") && $0.contains(" level=") && $0.contains(" msg=") },
            "\(lines.prefix(3))")
        #expect(lines.contains { $0.contains("level=info msg=\"token obtained\"") })
        // A core dump would hold keys: the daemon's core limit is zero.
        let limits = try String(contentsOfFile: "/proc/\(plain.daemon!.pid)/limits", encoding: .utf8)
        let core = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") })
        #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
        await plain.stop()
    }

    @Test("log_level in the configuration and --log-level set the level")
    func levels() async throws {
        let harness = try await DaemonHarness(.live)
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try harness.writeConfig(raw: "log_level: warning\n" + config)
        try await harness.startDaemon()
        _ = try await harness.request("/v1/token/notifications")
        _ = try await harness.daemon!.stop()
        #expect(!harness.logs.contains("level=info"))
        try await harness.startDaemon(arguments: ["serve", "--config", harness.configPath, "--log-level", "debug"])
        _ = try await harness.request("/v1/token/notifications")
        let log = try await harness.waitForLog(containing: "level=info msg=\"token handed out\"")
        #expect(log.contains("level=debug"))
        await harness.stop()
    }
}

@Suite("Audit folding through the daemon", .timeLimit(.minutes(2)), .sharedKeys)
struct AuditFoldingTests {
    @Test("1,000 hand-outs of one token to one process: one audit line in full, then count lines adding up to 999; curl, another process, gets its own line")
    func folding() async throws {
        // The default interval (60 s): the count comes in the line written at shutdown. (The
        // periodic lines and forgetting idle pairs are AuditorTests', without a clock to race.)
        let harness = try await DaemonHarness(.live)
        try await harness.startDaemon()
        let token = try await harness.json(try harness.request("/v1/token/notifications").body)["access_token"] as! String
        let connection = try RawSocket.connect(harness.socketPath)
        let request = "GET /v1/token/notifications HTTP/1.1\r\nHost: localhost\r\n\r\n"
        for _ in 0..<2 {
            #expect(connection.send(String(repeating: request, count: 500)))
            let answers = connection.receive(untilCount: 500, of: "HTTP/1.1 200 OK", timeout: .seconds(30))
            #expect(answers.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 500)
            #expect(answers.contains(token))
        }
        #expect(try await harness.daemon!.stop() == 0)
        let lines = harness.logs.split(separator: "\n")
        let pid = getpid()
        let full = lines.filter { $0.contains("msg=\"token handed out\"") && $0.contains(" pid=\(pid) ") }
        #expect(full.count == 1, "\(full)")
        let counts = lines.filter { $0.contains("msg=\"token handed out again\"") && $0.contains(" pid=\(pid) ") }
        #expect(counts.count == 1, "the count line written at shutdown: \(counts)")
        let total = counts.compactMap { line in line.split(separator: " ").first { $0.hasPrefix("count=") }.flatMap { Int($0.dropFirst(6)) } }.reduce(0, +)
        #expect(total == 999)
        let curl = lines.filter { $0.contains("msg=\"token handed out\"") && $0.contains("exe=/usr/bin/curl") }
        #expect(curl.count == 1, "\(curl)")
        await harness.stop()
    }
}

@Suite("The leak check itself", .sharedKeys)
struct LeakCheckTests {
    @Test("it finds a token fragment and a private key part, and passes clean text")
    func findsLeaks() {
        let token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODkifQ.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"
        let key = DaemonHarness.key
        #expect(LeakCheck.findings(in: "level=info msg=ok fingerprint=abc", tokens: [token], key: key).isEmpty)
        #expect(!LeakCheck.findings(in: "oops " + token, tokens: [token], key: key).isEmpty)
        let d = TestKey.base64url(key.parts["d"]!)
        #expect(LeakCheck.findings(in: "debug jwk d=" + d, tokens: [], key: key).contains("private key part d"))
    }
}

/// The daemon with its standard output and error on a pipe that nobody reads, as when journald
/// stalls, under `Tests/load/stall-load.py`.
struct StalledLog {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL
    static let locked = (0..<10).map { "locked-\($0)" }

    let harness: DaemonHarness
    let pipe: TestPipe
    let notify: RawSocket

    /// What the load saw, and what the test saw meanwhile.
    struct Observed {
        /// Token answers by status ("-1": a read that timed out, a hang; "-2": a connection error).
        var statuses: [String: Int]
        /// The slowest token answer by status, in seconds.
        var slowest: [String: Double]
        /// The error code of the first non-200 token answer, by status.
        var codes: [String: String]
        /// `/healthz` answers: 200, and the others.
        var healthy = 0
        var unhealthy: [String] = []
        /// When WATCHDOG=1 arrived.
        var watchdog: [ContinuousClock.Instant] = []
        var started = ContinuousClock.now
        var ended = ContinuousClock.now

        /// The longest time without WATCHDOG=1 during the load.
        var longestWatchdogGap: Duration {
            let times = [started] + watchdog + [ended]
            return zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? .zero
        }
    }

    /// Starts the daemon (socket open to all: the load runs as nobody) with `audit` settings.
    init(audit: String) async throws {
        let locked = Self.locked.map { name in DaemonHarness.profile(name, extra: "    allow:\n      uids: [4242]") }.joined(separator: "\n")
        harness = try await DaemonHarness(.live, socketMode: "0666", allow: "      uids: [65534]", extraProfiles: locked)
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try harness.writeConfig(raw: "audit:\n\(audit)\n" + config)
        pipe = try TestPipe()
        notify = try RawSocket.datagramListener(harness.directory.path("notify.sock"))
        try await harness.startDaemon(
            environment: ["NOTIFY_SOCKET": harness.directory.path("notify.sock"), "WATCHDOG_USEC": "1000000"],
            outputDescriptor: pipe.writeEnd
        )
        _ = try await harness.request("/v1/token/notifications")
    }

    /// Runs the load for `seconds`, polling `/healthz` and the watchdog all the while.
    func load(seconds: Int) async throws -> Observed {
        let process = try RunningProcess(
            "/bin/sh",
            [
                "-c", "exec python3 \"$@\"", "python3", Self.root.appendingPathComponent("Tests/load/stall-load.py").path,
                harness.socketPath, "\(seconds)", "notifications",
            ] + Self.locked
        )
        _ = notify.receiveWaitingDatagrams()
        var observed = Observed(statuses: [:], slowest: [:], codes: [:])
        while process.isRunning {
            let probe = try RawSocket.connect(harness.socketPath)
            probe.send("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            let answer = probe.receive(timeout: .seconds(3))
            if answer.hasPrefix("HTTP/1.1 200") && answer.hasSuffix("\r\n\r\nok\n") { observed.healthy += 1 } else { observed.unhealthy.append(answer) }
            for datagram in notify.receiveWaitingDatagrams() where datagram.contains("WATCHDOG=1") {
                observed.watchdog.append(.now)
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        observed.ended = .now
        #expect(process.waitForExit() == 0, "\(process.errorOutput)")
        let result = try #require(
            try JSONSerialization.jsonObject(with: Data(process.output.utf8)) as? [String: Any], "\(process.output) \(process.errorOutput)")
        observed.statuses = result["statuses"] as? [String: Int] ?? [:]
        observed.slowest = result["slowest"] as? [String: Double] ?? [:]
        observed.codes = result["codes"] as? [String: String] ?? [:]
        return observed
    }

    /// The drop counts the daemon's report lines add up to.
    static func reported(in text: String) -> (log: Int, audit: Int) {
        var log = 0
        var audit = 0
        for line in text.split(separator: "\n") where line.contains("log lines dropped") {
            for field in line.split(separator: " ") {
                if field.hasPrefix("dropped_log_lines=") { log += Int(field.dropFirst("dropped_log_lines=".count)) ?? 0 }
                if field.hasPrefix("dropped_audit_lines=") { audit += Int(field.dropFirst("dropped_audit_lines=".count)) ?? 0 }
            }
        }
        return (log, audit)
    }

    /// A counter's value in `/metrics`.
    func metric(_ series: String) async throws -> Int? {
        let text = try await harness.request("/metrics").body
        return text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Int($0.split(separator: " ").last!) }
    }
}

@Suite("A log destination that stops reading never stops the serving", .serialized, .timeLimit(.minutes(3)), .sharedKeys)
struct StalledLogTests {
    @Test(
        "on_overflow drop: every token request is answered with its token, /healthz and the watchdog carry on; once drained, one line and the metric count the dropped lines"
    )
    func drop() async throws {
        let stalled = try await StalledLog(audit: "  on_overflow: drop")
        let observed = try await stalled.load(seconds: 6)
        #expect(observed.statuses.keys.sorted() == ["200"], "every token request served: \(observed.statuses) \(observed.codes)")
        #expect((observed.statuses["200"] ?? 0) >= 1000, "thousands of requests: \(observed.statuses)")
        // Every probe answered (each within 3 s), and probes ran all along: at least one per
        // second of load (a loaded machine slows the probing loop itself, not the daemon's answers).
        #expect(observed.unhealthy.isEmpty && observed.healthy >= 6, "\(observed.healthy) \(observed.unhealthy.prefix(2))")
        #expect(
            observed.watchdog.count >= 5 && observed.longestWatchdogGap < .seconds(5),
            "\(observed.watchdog.count) pets, longest gap \(observed.longestWatchdogGap)")

        // Only now is the pipe read: what was buffered comes out, then the count of what was not.
        let drained = stalled.pipe.read(until: { $0.contains("log lines dropped") }, timeout: .seconds(30))
        #expect(drained.contains("msg=\"token obtained\""), "lines from before the stall are kept")
        let metricAudit = try #require(try await stalled.metric("maskinporten_broker_log_lines_dropped_total{stream=\"audit\"}"))
        let metricLog = try #require(try await stalled.metric("maskinporten_broker_log_lines_dropped_total{stream=\"log\"}"))
        let all = stalled.pipe.read(until: { StalledLog.reported(in: drained + $0) == (metricLog, metricAudit) }, timeout: .seconds(10))
        let reported = StalledLog.reported(in: drained + all)
        #expect(metricAudit > 100, "the load overflowed the buffer: \(metricAudit) audit lines dropped")
        #expect(reported == (metricLog, metricAudit), "report lines \(reported), metric \(metricLog) and \(metricAudit)")
        for leak in LeakCheck.findings(in: drained + all, tokens: stalled.harness.seenTokens.values, key: DaemonHarness.key) {
            Issue.record("secret in a log line: \(leak)")
        }
        await stalled.harness.stop()
    }

    @Test(
        "on_overflow refuse: once audit lines cannot be buffered, token requests get a fast 503 audit_unavailable; /healthz and the watchdog carry on; SIGTERM still stops it"
    )
    func refuse() async throws {
        let stalled = try await StalledLog(audit: "  on_overflow: refuse")
        let observed = try await stalled.load(seconds: 6)
        #expect(Set(observed.statuses.keys).isSubset(of: ["200", "503"]), "no hang, no other answer: \(observed.statuses)")
        #expect((observed.statuses["200"] ?? 0) > 0 && (observed.statuses["503"] ?? 0) > 100, "\(observed.statuses)")
        #expect(observed.codes["503"] == "audit_unavailable")
        #expect((observed.slowest["503"] ?? 99) < 1, "refusals are fast: \(observed.slowest)")
        // Every probe answered (each within 3 s), and probes ran all along: at least one per
        // second of load (a loaded machine slows the probing loop itself, not the daemon's answers).
        #expect(observed.unhealthy.isEmpty && observed.healthy >= 6, "\(observed.healthy) \(observed.unhealthy.prefix(2))")
        #expect(
            observed.watchdog.count >= 5 && observed.longestWatchdogGap < .seconds(5),
            "\(observed.watchdog.count) pets, longest gap \(observed.longestWatchdogGap)")
        let refused = try await stalled.harness.request("/v1/token/notifications")
        #expect(refused.status == 503)
        #expect(try stalled.harness.json(refused.body)["error"] as? String == "audit_unavailable")

        // Stopping does not wait on the stalled destination for more than a moment.
        let start = ContinuousClock.now
        #expect(try await stalled.harness.daemon!.stop(timeout: .seconds(10)) == 0)
        #expect(ContinuousClock.now - start < .seconds(6))
        await stalled.harness.stop()
    }
}
