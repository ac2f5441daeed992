import BrokerTestSupport
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Real answers of every route, checked against openapi.yaml by a JSON Schema validator.
@Suite("openapi.yaml against real answers", .serialized, .timeLimit(.minutes(2)), .sharedKeys)
struct OpenAPITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL

    @Test("every route's answers, errors included, match openapi.yaml")
    func answersMatchTheContract() async throws {
        let harness = try await DaemonHarness(extraProfiles: DaemonHarness.refusedProfile)
        try await Command.openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", harness.directory.path("pat-key.pem"), "-out", harness.directory.path("pat-cert.pem"),
            "-days", "30", "-subj", "/CN=pat")
        chmod(harness.directory.path("pat-key.pem"), 0o600)
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try harness.writeConfig(
            raw: config + """

                platform_access_tokens:
                  my-app: { issuer: ttd, app: my-app, certificate_file: pat-cert.pem, private_key_file: pat-key.pem }
                id_porten_exchange:
                  environment: local
                """)
        try await harness.startDaemon()
        let personToken =
            try await harness.json(
                try DaemonHarness.curlHTTP("-X", "POST", "--data", "{\"pid\":\"24908499375\"}", "\(harness.emulatorURL)/_emulator/idporten-token").output)[
                "access_token"] as! String

        let requests: [(method: String, path: String, extra: [String])] = [
            ("GET", "/v1/token/notifications", []),
            ("GET", "/v1/token/notifications", ["-H", "Accept: text/plain"]),
            ("GET", "/v1/token/notifications?min_valid=60", []),
            ("GET", "/v1/token/notifications?min_valid=x", []),
            ("GET", "/v1/token/notifications?min_valid=86400", []),
            ("GET", "/v1/token/nope", []),
            ("GET", "/v1/token/refused", []),
            ("DELETE", "/v1/token/notifications", []),
            ("POST", "/v1/token/notifications/refresh", []),
            ("POST", "/v1/token/notifications/refresh", []),
            ("GET", "/v1/platform-access-token/my-app", []),
            ("GET", "/v1/platform-access-token/none", []),
            ("POST", "/v1/exchange/id-porten", ["--data-binary", personToken]),
            ("POST", "/v1/exchange/id-porten", ["--data-binary", "garbage"]),
            ("GET", "/v1/profiles", []),
            ("GET", "/healthz", []),
            ("GET", "/readyz", []),
            ("GET", "/metrics", []),
        ]
        var answers: [[String: Any]] = []
        for request in requests {
            let result = try await harness.curl(request.path, ["-X", request.method] + request.extra + ["-w", "\n%{http_code}\n%{content_type}"])
            var lines = result.output.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            let contentType = lines.removeLast()
            let status = Int(lines.removeLast()) ?? 0
            answers.append([
                "method": request.method, "path": request.path, "status": status, "content_type": contentType, "body": lines.joined(separator: "\n"),
            ])
        }
        await harness.stop()
        let file = try harness.directory.write("answers.json", try JSONSerialization.data(withJSONObject: answers))
        let validation = try await Command.run(
            "python3", [Self.root.appendingPathComponent("Tests/openapi/validate.py").path, Self.root.appendingPathComponent("openapi.yaml").path, file])
        #expect(validation.status == 0, "\(validation.output)\(validation.errorOutput)")
        #expect(validation.output.hasSuffix("\(requests.count) passed, 0 failed\n"), "\(validation.output)")
    }
}
