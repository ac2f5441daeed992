import BrokerTestSupport
import Foundation
import Testing

/// `maskinporten-broker emulator`, used with curl as a developer would.
@Suite("Command line: emulator", .timeLimit(.minutes(2)), .sharedKeys)
struct EmulatorCommandTests {
    static let key: TestKey = SharedKeys.key("harness")

    /// Starts the emulator on a free port and returns it with its base URL.
    func start(stateDir: String) async throws -> (RunningProcess, String) {
        let process = try RunningProcess(try BrokerExecutable.path, ["emulator", "--listen", "127.0.0.1:0", "--state-dir", stateDir])
        let output = try await process.waitForOutput(containing: "control API:")
        let firstLine = try #require(output.split(separator: "\n").first)
        let base = try #require(firstLine.split(separator: " ").last.map(String.init))
        #expect(base.hasPrefix("http://127.0.0.1:"))
        return (process, base)
    }

    func curl(_ arguments: String...) async throws -> Command.Result {
        try await Command.run("curl", ["-sS", "--max-time", "10"] + arguments)
    }

    func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test("register a client, get a token for a grant, exchange it, inject a fault, read the counters, keep state")
    func emulatorByHand() async throws {
        let scratch = try TemporaryDirectory(prefix: "emulator")
        let stateDir = scratch.path("state")
        var (process, base) = try await start(stateDir: stateDir)

        // Register the client with its public JWK.
        var publicJWK = Self.key.jwkMembers(kid: "emu-kid", alg: nil)
        for member in ["d", "p", "q", "dp", "dq", "qi"] { publicJWK.removeValue(forKey: member) }
        let client = "{\"client_id\":\"emu-client\",\"scopes\":[\"altinn:serviceowner/notifications.create\"],\"keys\":[\(TestKey.json(publicJWK))]}"
        let registered = try await curl(
            "-X", "POST", "-H", "Content-Type: application/json", "--data", client, "-w", "\n%{http_code}", "\(base)/_emulator/clients")
        #expect(registered.output.hasSuffix("\n201"), "\(registered.output)")
        // keygen's array pasted inside the placeholder's brackets: the nesting is named.
        let nested = try await curl(
            "-X", "POST", "--data", client.replacingOccurrences(of: "\"keys\":[", with: "\"keys\":[[").replacingOccurrences(of: "}]}", with: "}]]}"),
            "\(base)/_emulator/clients")
        #expect(nested.output.contains("holds an array inside its array"), "\(nested.output)")

        // A grant from sign-grant, posted with curl as docs/emulator.md shows.
        try scratch.write("key.jwk", Self.key.encodedJwk(kid: "emu-kid", alg: nil))
        let config = try scratch.write(
            "broker.yaml",
            """
            environments:
              local:
                maskinporten_issuer: \(base)/
                altinn_platform: \(base)
            profiles:
              demo:
                environment: local
                client_id: emu-client
                scopes: [altinn:serviceowner/notifications.create]
                key:
                  encoded_jwk_file: key.jwk
            """, mode: 0o644)
        let signing = ContinuousClock.now
        let grant = try await BrokerExecutable.run(["sign-grant", "demo", "--config", config]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let tokenAnswer = try await curl("-d", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer", "-d", "assertion=\(grant)", "\(base)/token")
        let token = try json(tokenAnswer.output)
        #expect(token["token_type"] as? String == "Bearer")
        #expect(token["expires_in"] as? Int == 120)
        let accessToken = try #require(token["access_token"] as? String)

        // The same grant again: refused as reused.
        let reused = try await json(
            try curl("-d", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer", "-d", "assertion=\(grant)", "\(base)/token").output)
        #expect(reused["error"] as? String == "invalid_grant")
        // Refused as reused; or, when this machine is so slow (the thread sanitizer's build) that
        // the grant's iat has left the emulator's 10 s window meanwhile, as too old: checked first.
        let description = reused["error_description"] as? String ?? ""
        if ContinuousClock.now - signing < .seconds(9) {
            #expect(description.hasPrefix("MP-134:"), "\(description)")
        } else {
            #expect(description.hasPrefix("MP-134:") || description.contains("from the server's clock"), "\(description)")
        }

        // The exchange: a bare JWT as text, a JSON string when JSON is asked for.
        let bare = try await curl("-H", "Authorization: Bearer \(accessToken)", "\(base)/authentication/api/v1/exchange/maskinporten").output
        #expect(bare.split(separator: ".").count == 3 && !bare.hasPrefix("\""))
        let quoted = try await curl(
            "-H", "Authorization: Bearer \(accessToken)", "-H", "Accept: application/json", "\(base)/authentication/api/v1/exchange/maskinporten?test=true"
        ).output
        #expect(quoted.hasPrefix("\"") && quoted.hasSuffix("\""))
        let unquoted = try JSONDecoder().decode(String.self, from: Data(quoted.utf8))
        let claims = try JSONSerialization.jsonObject(with: TestKey.decodeBase64url(String(unquoted.split(separator: ".")[1]))) as? [String: Any]
        #expect(claims?["urn:altinn:org"] as? String == "ttd")
        let refused = try await curl("-w", "\n%{http_code}", "-H", "Authorization: Bearer nope", "\(base)/authentication/api/v1/exchange/maskinporten").output
        #expect(refused.hasSuffix("\n401"))

        // A fault: one 503 with Retry-After, then normal service.
        _ = try await curl("-X", "POST", "--data", "{\"status\":503,\"retry_after\":7,\"count\":1}", "\(base)/_emulator/faults/token")
        let faulted = try await curl("-i", "-d", "grant_type=x", "\(base)/token").output
        #expect(faulted.hasPrefix("HTTP/1.1 503"))
        #expect(faulted.lowercased().contains("retry-after: 7"))
        let after = try await curl("-w", "\n%{http_code}", "-d", "grant_type=x", "\(base)/token").output
        #expect(after.hasSuffix("\n400"))

        let stats = try await json(try curl("\(base)/_emulator/stats").output)
        #expect(stats["token_requests"] as? Int == 4)
        #expect(stats["tokens_issued"] as? Int == 1)
        #expect(stats["exchange_requests"] as? Int == 3)
        #expect(stats["faults_injected"] as? Int == 1)

        // SIGTERM stops it cleanly; the state directory keeps the client and the signing key.
        #expect(try await process.stop() == 0)
        (process, base) = try await start(stateDir: stateDir)
        let clients = try await curl("\(base)/_emulator/clients").output
        #expect(clients.contains("\"client_id\":\"emu-client\""))
        let keyMode = try FileManager.default.attributesOfItem(atPath: stateDir + "/signing-key.pem")[.posixPermissions] as? Int
        #expect(keyMode == 0o600)
        #expect(try await process.stop(SIGINT) == 0)
    }

    @Test("a port in use is named with the fix, in words, not NIO's")
    func portInUse() async throws {
        let first = try RunningProcess(try BrokerExecutable.daemonPath, ["emulator", "--listen", "127.0.0.1:0"])
        let banner = try await first.waitForOutput(containing: "token endpoint")
        let address = try #require(banner.split(separator: "\n").first { $0.contains("listening on") }?.split(separator: "/").last)
        let result = try await BrokerExecutable.run(["emulator", "--listen", String(address)])
        #expect(result.status == 1)
        let portText = try #require(address.split(separator: ":").last)
        let port = try #require(Int(portText))
        #expect(
            result.errorOutput
                == "error: the emulator could not listen on \(address): Address already in use: another program (an emulator still running?) listens there; stop it, or choose another port with --listen 127.0.0.1:\(port + 1)\n"
        )
        #expect(try await first.stop(SIGINT) == 0)
    }

    @Test("the emulator refuses to listen beyond loopback")
    func loopbackOnly() async throws {
        let result = try await BrokerExecutable.run(["emulator", "--listen", "0.0.0.0:18080"])
        #expect(result.status != 0)
        #expect(result.errorOutput.contains("loopback only"))
    }
}
