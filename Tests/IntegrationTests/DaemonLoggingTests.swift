import BrokerTestSupport
import Foundation
import Testing

@Suite("Daemon logging and process hardening", .serialized, .timeLimit(.minutes(2)))
struct DaemonLoggingTests {
    @Test("under systemd (JOURNAL_STREAM) lines carry syslog priorities and no timestamp; otherwise logfmt with timestamps")
    func formats() async throws {
        let journald = try await DaemonHarness()
        try await journald.startDaemon(environment: ["JOURNAL_STREAM": "8:12345"])
        _ = try journald.request("/v1/token/notifications")
        try await Task.sleep(for: .milliseconds(200))
        let journalLines = journald.daemon!.errorOutput.split(separator: "\n")
        #expect(!journalLines.isEmpty)
        #expect(journalLines.allSatisfy { $0.hasPrefix("<") && $0.dropFirst().first.map { ("2"..."7").contains($0) } == true }, "\(journalLines.prefix(3))")
        #expect(journalLines.contains { $0.hasPrefix("<6>token handed out ") && $0.contains("profile=notifications") })
        #expect(!journalLines.contains { $0.contains("ts=") })
        await journald.stop()

        let plain = try await DaemonHarness()
        try await plain.startDaemon()
        _ = try plain.request("/v1/token/notifications")
        let lines = plain.daemon!.errorOutput.split(separator: "\n")
        #expect(lines.allSatisfy { $0.hasPrefix("ts=20") && $0.split(separator: " ")[0].hasSuffix("Z") && $0.contains(" level=") && $0.contains(" msg=") }, "\(lines.prefix(3))")
        #expect(lines.contains { $0.contains("level=info msg=\"token obtained\"") })
        // A core dump would hold keys: the daemon's core limit is zero.
        let limits = try String(contentsOfFile: "/proc/\(plain.daemon!.pid)/limits", encoding: .utf8)
        let core = try #require(limits.split(separator: "\n").first { $0.hasPrefix("Max core file size") })
        #expect(core.split(separator: " ", omittingEmptySubsequences: true).dropFirst(4).prefix(2) == ["0", "0"], "\(core)")
        await plain.stop()
    }

    @Test("log_level in the configuration and --log-level set the level")
    func levels() async throws {
        let harness = try await DaemonHarness()
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try harness.writeConfig(raw: "log_level: warning\n" + config)
        try await harness.startDaemon()
        _ = try harness.request("/v1/token/notifications")
        #expect(!harness.daemon!.errorOutput.contains("level=info"))
        _ = try await harness.daemon!.stop()
        try await harness.startDaemon(arguments: ["serve", "--config", harness.configPath, "--log-level", "debug"])
        _ = try harness.request("/v1/token/notifications")
        #expect(harness.daemon!.errorOutput.contains("level=debug"))
        #expect(harness.daemon!.errorOutput.contains("level=info msg=\"token handed out\""))
        await harness.stop()
    }
}

@Suite("The leak check itself")
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
