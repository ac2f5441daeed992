import BrokerTestSupport
import Foundation
import Testing

/// An emulator process, a client registered with it, and `serve` running against it: the daemon
/// as an operator runs it.
final class DaemonHarness: @unchecked Sendable {
    static let key: TestKey = try! TestKey.rsa(bits: 2048)
    static let clientID = "2f3c9a1e-0000-4000-8000-000000000000"

    let directory: TemporaryDirectory
    let emulator: RunningProcess
    let emulatorURL: String
    var daemon: RunningProcess?
    let socketPath: String
    let configPath: String

    /// Starts the emulator and writes a configuration with profile `notifications`
    /// (plus `extraProfiles`, YAML under `profiles:`) and `socket` settings.
    init(socketMode: String = "0660", socketGroup: String? = nil, allow: String? = nil, extraProfiles: String = "", altinnLifetime: Int = 1800) async throws {
        directory = try TemporaryDirectory(prefix: "daemon")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.url.path)
        emulator = try RunningProcess(try BrokerExecutable.path, ["emulator", "--listen", "127.0.0.1:0"])
        let output = try await emulator.waitForOutput(containing: "control API:")
        emulatorURL = String(output.split(separator: "\n")[0].split(separator: " ").last!)
        var publicJWK = Self.key.jwkMembers(kid: "daemon-kid", alg: nil)
        for member in ["d", "p", "q", "dp", "dq", "qi"] { publicJWK.removeValue(forKey: member) }
        try Self.curlHTTP("-X", "POST", "--data", "{\"client_id\":\"\(Self.clientID)\",\"scopes\":[\"altinn:serviceowner/notifications.create\"],\"keys\":[\(TestKey.json(publicJWK))]}", "\(emulatorURL)/_emulator/clients")
        try Self.curlHTTP("-X", "PUT", "--data", "{\"altinn_token_lifetime\":\(altinnLifetime)}", "\(emulatorURL)/_emulator/settings")
        try directory.write("notifications.jwk", Self.key.encodedJwk(kid: "daemon-kid", alg: nil))
        socketPath = directory.path("run/broker.sock")
        configPath = directory.path("broker.yaml")
        try writeConfig(socketMode: socketMode, socketGroup: socketGroup, allow: allow, extraProfiles: extraProfiles)
    }

    func writeConfig(socketMode: String = "0660", socketGroup: String? = nil, allow: String? = nil, extraProfiles: String = "", raw: String? = nil) throws {
        let yaml = raw ?? """
            socket:
              path: \(socketPath)
              mode: "\(socketMode)"
            \(socketGroup.map { "  group: \($0)" } ?? "")
            environments:
              local:
                maskinporten_issuer: \(emulatorURL)/
                altinn_platform: \(emulatorURL)
            profiles:
              notifications:
                environment: local
                client_id: \(Self.clientID)
                scopes: [altinn:serviceowner/notifications.create]
                key:
                  encoded_jwk_file: notifications.jwk
            \(allow.map { "    allow:\n" + $0 } ?? "")
            \(extraProfiles)
            """
        try directory.write("broker.yaml", yaml, mode: 0o644)
    }

    /// Starts `serve` and waits until it answers on the socket.
    func startDaemon(environment extra: [String: String] = [:], arguments: [String]? = nil, executable: String? = nil, waitForSocket: Bool = true) async throws {
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "NOTIFY_SOCKET")
        environment.merge(extra) { $1 }
        daemon = try RunningProcess(executable ?? (try BrokerExecutable.path), arguments ?? ["serve", "--config", configPath], environment: environment)
        if waitForSocket { try await waitUntilServing() }
    }

    func waitUntilServing(timeout: Duration = .seconds(20)) async throws {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if let result = try? curl("/healthz"), result.output == "ok\n" { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestSupportError("the daemon did not answer on \(socketPath): \(daemon?.errorOutput ?? "")")
    }

    /// `curl --unix-socket` to the daemon; `-w` appends the status on its own line.
    @discardableResult
    func curl(_ path: String, _ extra: [String] = []) throws -> Command.Result {
        try Command.run("curl", ["-sS", "--max-time", "10", "--unix-socket", socketPath] + extra + ["http://localhost\(path)"])
    }

    /// The status code and body of a request over the socket.
    func request(_ path: String, _ extra: [String] = []) throws -> (status: Int, body: String) {
        let result = try curl(path, extra + ["-w", "\n%{http_code}"])
        let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
        return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @discardableResult
    static func curlHTTP(_ arguments: String...) throws -> Command.Result {
        let result = try Command.run("curl", ["-sS", "--fail", "--max-time", "10"] + arguments)
        guard result.status == 0 else { throw TestSupportError("curl \(arguments) failed: \(result.errorOutput)") }
        return result
    }

    func emulatorStats() throws -> [String: Any] {
        try json(try Self.curlHTTP("\(emulatorURL)/_emulator/stats").output)
    }

    func stop() async {
        if let daemon { _ = try? await daemon.stop() }
        _ = try? await emulator.stop()
    }
}
