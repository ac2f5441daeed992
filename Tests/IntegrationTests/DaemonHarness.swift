import BrokerServer
import BrokerTestSupport
import Foundation
import Testing

/// An emulator process, a client registered with it, and `serve` running against it, written once
/// for two modes (as Hummingbird's tests run a body against the router or a live server):
/// `.inProcess` (the default) runs the daemon's services in the test process, on the same socket;
/// `.live` starts the `maskinporten-brokerd` process, for the tests whose subject is the process
/// itself (signals, systemd, its environment, its standard output, hardening).
final class DaemonHarness: @unchecked Sendable {
    /// Where `serve` runs.
    enum Mode {
        /// Its services in this process (`InProcessDaemon`).
        case inProcess
        /// The executable, as an operator runs it.
        case live
    }

    static let key: TestKey = SharedKeys.key("harness")
    static let clientID = "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17"

    /// A profile's section under `profiles:` (for `extraProfiles`): the emulator's client,
    /// `scopes`, the key in `keyFile`, and `extra` lines (indented as the profile's own).
    static func profile(
        _ name: String, environment: String = "local", scopes: String = "altinn:serviceowner/notifications.create",
        keyFile: String = "notifications.jwk", extra: String = ""
    ) -> String {
        """
          \(name):
            environment: \(environment)
            client_id: \(clientID)
            scopes: [\(scopes)]
            key:
              encoded_jwk_file: \(keyFile)
        """ + (extra.isEmpty ? "" : "\n" + extra)
    }

    /// A profile the emulator refuses (its scope is not allowed), for upstream_rejected answers.
    static let refusedProfile = profile("refused", scopes: "altinn:serviceowner/not-allowed")

    let mode: Mode
    let directory: TemporaryDirectory
    let emulator: RunningProcess
    let emulatorURL: String
    var daemon: RunningProcess?
    /// The daemon in `.inProcess` mode.
    var inProcess: InProcessDaemon?
    let socketPath: String
    let configPath: String
    /// The CA of an emulator serving HTTPS (`tls:`), which the configuration trusts.
    let emulatorCA: TestCA?
    /// Lines added to the `local` environment (a proxy, say).
    var environmentExtra = ""
    /// Lines added to profile `notifications` (a `gateway:` section, say), indented under it.
    var profileExtra = ""
    /// Secrets besides tokens and the key that no log line may hold (a proxy's password).
    var secrets: [String] = []

    /// Starts the emulator and writes a configuration with profile `notifications`
    /// (plus `extraProfiles`, YAML under `profiles:`) and `socket` settings. With `tls`, the
    /// emulator serves HTTPS on `tls.address` (a test network's address, not loopback) with a
    /// certificate from the test's CA, which `ca_file` trusts: listening on every address, named
    /// by `tls.host` (not a loopback name, so that calls to it may go through a proxy).
    init(
        _ mode: Mode = .inProcess, socketMode: String = "0660", socketGroup: String? = nil, allow: String? = nil, extraProfiles: String = "",
        altinnLifetime: Int = 1800, tls: (ca: TestCA, host: String)? = nil
    ) async throws {
        self.mode = mode
        try await SharedKeys.prepare()
        directory = try TemporaryDirectory(prefix: "daemon")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.url.path)
        emulatorCA = tls?.ca
        socketPath = directory.path("run/broker.sock")
        configPath = directory.path("broker.yaml")
        let listen =
            tls.map {
                ["--listen", "0.0.0.0:0", "--any-address", "--public-host", $0.host, "--tls-certificate", $0.ca.certificateFile, "--tls-key", $0.ca.keyFile]
            } ?? [
                "--listen", "127.0.0.1:0",
            ]
        emulator = try RunningProcess(try BrokerExecutable.path, ["emulator"] + listen)
        let output = try await emulator.waitForOutput(containing: "control API:")
        emulatorURL = String(output.split(separator: "\n")[0].split(separator: " ").last!)
        try await emulatorCurl(
            "-X", "POST", "--data",
            "{\"client_id\":\"\(Self.clientID)\",\"scopes\":[\"altinn:serviceowner/notifications.create\"],\"keys\":[\(Self.publicJWK(Self.key, kid: "daemon-kid"))]}",
            "\(emulatorURL)/_emulator/clients")
        try await emulatorCurl("-X", "PUT", "--data", "{\"altinn_token_lifetime\":\(altinnLifetime)}", "\(emulatorURL)/_emulator/settings")
        try directory.write("notifications.jwk", Self.key.encodedJwk(kid: "daemon-kid", alg: nil))
        try writeConfig(socketMode: socketMode, socketGroup: socketGroup, allow: allow, extraProfiles: extraProfiles)
    }

    /// The public part of `key` as a JWK, as a client registers it.
    static func publicJWK(_ key: TestKey, kid: String) -> String {
        var members = key.jwkMembers(kid: kid, alg: nil)
        for member in ["d", "p", "q", "dp", "dq", "qi"] { members.removeValue(forKey: member) }
        return TestKey.json(members)
    }

    func writeConfig(socketMode: String = "0660", socketGroup: String? = nil, allow: String? = nil, extraProfiles: String = "", raw: String? = nil) throws {
        let yaml =
            raw ?? """
                socket:
                  path: \(socketPath)
                  mode: "\(socketMode)"
                \(socketGroup.map { "  group: \($0)" } ?? "")
                environments:
                  local:
                    maskinporten_issuer: \(emulatorURL)/
                    altinn_platform: \(emulatorURL)
                \(emulatorCA.map { "    ca_file: \($0.caFile)" } ?? "")
                \(environmentExtra)
                profiles:
                  notifications:
                    environment: local
                    client_id: \(Self.clientID)
                    scopes: [altinn:serviceowner/notifications.create]
                    key:
                      encoded_jwk_file: notifications.jwk
                \(allow.map { "    allow:\n" + $0 } ?? "")
                \(profileExtra)
                \(extraProfiles)
                """
        try directory.write("broker.yaml", yaml, mode: 0o644)
    }

    /// A certificate and key for a Platform Access Token issuer `my-app` (app `my-app` of `ttd`),
    /// made in the test's directory; the `platform_access_tokens:` section naming them, with
    /// `allow` lines under the issuer if given.
    func platformAccessToken(allow: String = "") async throws -> String {
        try await Command.openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", directory.path("pat-key.pem"), "-out", directory.path("pat-cert.pem"), "-days",
            "60", "-subj", "/CN=ttd platform access")
        chmod(directory.path("pat-key.pem"), 0o600)
        return """
            platform_access_tokens:
              my-app:
                issuer: ttd
                app: my-app
                certificate_file: pat-cert.pem
                private_key_file: pat-key.pem
            \(allow)
            """
    }

    /// Starts `serve` and waits until it answers on the socket.
    func startDaemon(
        environment extra: [String: String] = [:], arguments: [String]? = nil, executable: String? = nil, waitForSocket: Bool = true,
        outputDescriptor: Int32? = nil, limits: ServerLimits = ServerLimits()
    ) async throws {
        if mode == .inProcess {
            precondition(extra.isEmpty && arguments == nil && executable == nil && outputDescriptor == nil, "a process's settings need .live")
            inProcess = try InProcessDaemon.start(configPath: configPath, logPath: directory.path("daemon.log"), limits: limits)
            if waitForSocket { try await waitUntilServing() }
            return
        }
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        environment.merge(extra) { $1 }
        daemon = try RunningProcess(
            executable ?? (try BrokerExecutable.path), arguments ?? ["serve", "--config", configPath], environment: environment,
            outputDescriptor: outputDescriptor)
        if waitForSocket { try await waitUntilServing() }
    }

    func waitUntilServing(timeout: Duration = .seconds(20)) async throws {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if let result = try? await curl("/healthz"), result.output == "ok\n" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("the daemon did not answer on \(socketPath): \(logs)")
    }

    /// The daemon's log lines so far (standard output) and anything it printed on standard error.
    var logs: String { inProcess?.logs ?? daemon.map { $0.output + $0.errorOutput } ?? "" }

    /// The daemon's log once it holds `text`: lines are written by a thread of their own, a
    /// moment after the request that made them.
    @discardableResult
    func waitForLog(containing text: String) async throws -> String {
        if let inProcess {
            let end = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < end {
                if inProcess.logs.contains(text) { return inProcess.logs }
                try await Task.sleep(for: .milliseconds(10))
            }
            throw TestSupportError("no log line with \(text): \(inProcess.logs)")
        }
        return try await daemon!.waitForOutput(containing: text)
    }

    /// `curl --unix-socket` to the daemon; `-w` appends the status on its own line.
    @discardableResult
    func curl(_ path: String, _ extra: [String] = []) async throws -> Command.Result {
        try await Command.run("curl", ["-sS", "--max-time", "10", "--unix-socket", socketPath] + extra + ["http://localhost\(path)"])
    }

    /// The status code and body of a request over the socket. Every token seen in an answer is
    /// remembered, so that `stop()` can check no log line holds one.
    func request(_ path: String, _ extra: [String] = []) async throws -> (status: Int, body: String) {
        let result = try await curl(path, extra + ["-w", "\n%{http_code}"])
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        let body = lines.dropLast().joined(separator: "\n")
        if let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], let token = object["access_token"] as? String {
            seenTokens.withLock { $0.insert(token) }
        } else if body.split(separator: ".").count == 3, !body.contains(" ") {
            seenTokens.withLock { $0.insert(body) }
        }
        return (Int(lines.last ?? "") ?? 0, body)
    }

    let seenTokens = LockedSet()

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @discardableResult
    static func curlHTTP(_ arguments: String...) async throws -> Command.Result {
        try await curlHTTP(arguments)
    }

    @discardableResult
    static func curlHTTP(_ arguments: [String]) async throws -> Command.Result {
        let result = try await Command.run("curl", ["-sS", "--fail", "--max-time", "10"] + arguments)
        guard result.status == 0 else { throw TestSupportError("curl \(arguments) failed: \(result.errorOutput)") }
        return result
    }

    /// `curlHTTP` to the emulator, trusting its CA when it serves HTTPS.
    @discardableResult
    func emulatorCurl(_ arguments: String...) async throws -> Command.Result {
        try await Self.curlHTTP((emulatorCA.map { ["--cacert", $0.caFile] } ?? []) + arguments)
    }

    func emulatorStats() async throws -> [String: Any] {
        try json(try await emulatorCurl("\(emulatorURL)/_emulator/stats").output)
    }

    /// Stops both processes, then runs their logs through the leak check: no token handed out
    /// in this test and no fragment of the private key may appear in any log line.
    func stop() async {
        if let daemon { _ = try? await daemon.stop() }
        await inProcess?.stop()
        _ = try? await emulator.stop()
        let logs = self.logs + emulator.output + emulator.errorOutput
        for leak in LeakCheck.findings(in: logs, tokens: seenTokens.values, key: Self.key, secrets: secrets) {
            Issue.record("secret in a log line: \(leak)")
        }
    }
}

/// A set shared by the test and its harness.
final class LockedSet: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: Set<String> = []
    func withLock(_ body: (inout Set<String>) -> Void) { lock.withLock { body(&storage) } }
    var values: Set<String> { lock.withLock { storage } }
}

/// Looks for secrets in log text: any token's payload or signature, any private key part.
enum LeakCheck {
    static func findings(in logs: String, tokens: Set<String>, key: TestKey, secrets: [String] = []) -> [String] {
        var found: [String] = []
        for (index, secret) in secrets.enumerated() where logs.contains(secret) {
            found.append("secret \(index + 1) of \(secrets.count) (\(secret.count) characters)")
        }
        for token in tokens {
            let parts = token.split(separator: ".")
            for part in parts.dropFirst() where part.count >= 24 {
                if logs.contains(part.prefix(24)) { found.append("a token fragment (\(part.prefix(8))…)") }
            }
        }
        for (member, bytes) in key.parts where ["d", "p", "q", "dp", "dq", "qi"].contains(member) {
            let encoded = TestKey.base64url(bytes)
            if logs.contains(encoded.prefix(20)) { found.append("private key part \(member)") }
            let standard = Data(bytes).base64EncodedString()
            if logs.contains(standard.prefix(20)) { found.append("private key part \(member) (Base64)") }
        }
        if logs.contains(key.encodedJwk(kid: "daemon-kid", alg: nil).prefix(40)) { found.append("the EncodedJwk") }
        return found
    }
}
