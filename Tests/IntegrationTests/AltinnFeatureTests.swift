import BrokerTestSupport
import Foundation
import Testing

/// Business certificates, delegation, system users, the test organisation, Platform Access
/// Tokens and the ID-porten exchange, through the socket.
@Suite("Altinn features through the socket", .serialized, .timeLimit(.minutes(2)), .sharedKeys)
struct AltinnFeatureTests {
    func decode(_ segment: Substring) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: TestKey.decodeBase64url(String(segment))) as? [String: Any])
    }

    /// A self-signed certificate for `DaemonHarness.key`, valid `days`, and its DER in Base64.
    func certificate(in harness: DaemonHarness, name: String, subject: String, days: Int = 30) async throws -> (pem: String, der: String) {
        try await Command.openssl(
            "req", "-x509", "-key", DaemonHarness.key.pkcs8Path, "-out", harness.directory.path("\(name).pem"), "-days", "\(days)", "-subj", subject)
        let der = try await Command.openssl("x509", "-in", harness.directory.path("\(name).pem"), "-outform", "DER").stdout
        return (harness.directory.path("\(name).pem"), der.base64EncodedString())
    }

    @Test("x5c profile, delegation, system user and test organisation each get their Altinn token")
    func profiles() async throws {
        let harness = try await DaemonHarness()
        try harness.directory.write("org.key", Data(contentsOf: URL(fileURLWithPath: DaemonHarness.key.pkcs8Path)))
        let cert = try await certificate(in: harness, name: "org", subject: "/CN=Testorg AS/serialNumber=991825827")
        try await DaemonHarness.curlHTTP(
            "-X", "POST", "--data",
            """
            {"client_id":"business-client","scopes":["altinn:serviceowner/notifications.create"],"certificates":["\(cert.der)"]}
            """, "\(harness.emulatorURL)/_emulator/clients")
        func profile(_ name: String, _ extra: String, clientID: String = DaemonHarness.clientID, key: String = "encoded_jwk_file: notifications.jwk") -> String
        {
            """
              \(name):
                environment: local
                client_id: \(clientID)
                scopes: [altinn:serviceowner/notifications.create]
                key:
                  \(key)
            \(extra)
            """
        }
        try harness.writeConfig(
            extraProfiles: [
                profile("business", "", clientID: "business-client", key: "certificate_file: org.pem\n      private_key_file: org.key"),
                profile("delegated", "    consumer_org: \"974760673\""),
                profile("systemuser", "    system_user_org: \"991825827\"\n    system_user_external_ref: ext-1"),
                profile("testorg", "    altinn_test_org: true"),
            ].joined(separator: "\n"))
        try await harness.startDaemon()

        for name in ["business", "delegated", "systemuser", "testorg"] {
            let answer = try await harness.request("/v1/token/\(name)")
            #expect(answer.status == 200, "\(name): \(answer.body)")
        }
        let delegated = try await harness.json(try harness.request("/v1/token/delegated").body)["access_token"] as! String
        #expect(try decode(delegated.split(separator: ".")[1])["urn:altinn:orgNumber"] as? String == "974760673")
        let testorg = try await harness.json(try harness.request("/v1/token/testorg").body)["access_token"] as! String
        #expect(try decode(testorg.split(separator: ".")[1])["urn:altinn:org"] as? String == "ttd")

        // Days to certificate expiry in /readyz and /metrics.
        let readiness = try await harness.json(try harness.request("/readyz").body)
        let days = try #require(readiness["certificate_days_left"] as? [String: Int])
        #expect((28...30).contains(days["profiles.business"] ?? -1))
        #expect(try await harness.request("/metrics").body.contains("maskinporten_broker_certificate_expiry_days{name=\"profile:business\"}"))

        // check-config prints subject, organisation number, issuer and expiry.
        let check = try await BrokerExecutable.run(["check-config", "--config", harness.configPath])
        #expect(
            check.output.contains(
                "x5c:          serialNumber=991825827,CN=Testorg AS (organisation 991825827), issued by serialNumber=991825827,CN=Testorg AS, expires "))
        #expect(check.output.contains("consumer org: 974760673"))
        #expect(check.output.contains("system user:  991825827 (external ref ext-1)"))
        await harness.stop()
    }

    @Test("Platform Access Tokens: RS256 with the certificate's key, kid and x5t from its SHA-1 thumbprint, Altinn's claims, cached, verified by openssl")
    func platformAccessTokens() async throws {
        let harness = try await DaemonHarness()
        try harness.writeConfig(extraProfiles: try await harness.platformAccessToken(allow: "    allow: { users: [root] }"))
        try await harness.startDaemon()

        let before = Int(Date().timeIntervalSince1970)
        let answer = try await harness.request("/v1/platform-access-token/my-app")
        let after = Int(Date().timeIntervalSince1970)
        #expect(answer.status == 200, "\(answer.body)")
        let body = try harness.json(answer.body)
        #expect(Set(body.keys) == ["access_token", "header", "expires_in", "expires_at"])
        #expect(body["header"] as? String == "PlatformAccessToken")
        #expect((295...300).contains(body["expires_in"] as? Int ?? 0))
        let token = try #require(body["access_token"] as? String)
        let parts = token.split(separator: ".")

        let fingerprint = try await Command.openssl("x509", "-in", harness.directory.path("pat-cert.pem"), "-noout", "-fingerprint", "-sha1").output
        let hex = String(fingerprint.split(separator: "=")[1]).trimmingCharacters(in: .whitespacesAndNewlines).replacingOccurrences(of: ":", with: "")
        let header = try decode(parts[0])
        #expect(Set(header.keys) == ["alg", "typ", "kid", "x5t"])
        #expect(header["alg"] as? String == "RS256")
        #expect(header["typ"] as? String == "JWT")
        #expect(header["kid"] as? String == hex.uppercased())
        let thumbprint = stride(from: 0, to: hex.count, by: 2).map { UInt8(hex.dropFirst($0).prefix(2), radix: 16)! }
        #expect(header["x5t"] as? String == TestKey.base64url(thumbprint))

        let claims = try decode(parts[1])
        #expect(Set(claims.keys) == ["iss", "urn:altinn:app", "aud", "nbf", "exp"])
        #expect(claims["iss"] as? String == "ttd")
        #expect(claims["urn:altinn:app"] as? String == "my-app")
        #expect(claims["aud"] as? String == "platform.altinn.no")
        let nbf = try #require(claims["nbf"] as? Int)
        let exp = try #require(claims["exp"] as? Int)
        // Minted during the request: nbf is then minus 5 s.
        #expect((before - 6...after - 4).contains(nbf), "\(before) \(nbf) \(after)")
        #expect(exp - nbf == 305)

        let publicKey = try await Command.openssl("x509", "-in", harness.directory.path("pat-cert.pem"), "-pubkey", "-noout").stdout
        try harness.directory.write("pat-public.pem", publicKey)
        try harness.directory.write("pat-input", Data("\(parts[0]).\(parts[1])".utf8))
        try harness.directory.write("pat-signature", TestKey.decodeBase64url(String(parts[2])))
        let verdict = try await Command.run(
            "openssl",
            [
                "dgst", "-sha256", "-verify", harness.directory.path("pat-public.pem"), "-signature", harness.directory.path("pat-signature"),
                harness.directory.path("pat-input"),
            ])
        #expect(verdict.output.contains("Verified OK"))

        #expect(
            try await harness.json(try harness.request("/v1/platform-access-token/my-app").body)["access_token"] as? String == token, "minted once and cached")
        #expect(try await harness.request("/v1/platform-access-token/other").status == 404)
        let readiness = try await harness.json(try harness.request("/readyz").body)
        #expect((58...60).contains((readiness["certificate_days_left"] as? [String: Int])?["platform_access_tokens.my-app"] ?? -1))
        await harness.stop()
    }

    @Test("the ID-porten exchange: a person's token becomes an Altinn token, cached by hash; bad input gets a 4xx with Altinn's reason; nothing is logged")
    func idPorten() async throws {
        let harness = try await DaemonHarness()
        try harness.writeConfig(
            extraProfiles: """
                id_porten_exchange:
                  environment: local
                  allow: { users: [root] }
                """)
        try await harness.startDaemon()
        let minted = try await harness.json(
            try DaemonHarness.curlHTTP("-X", "POST", "--data", "{\"pid\":\"24908499375\"}", "\(harness.emulatorURL)/_emulator/idporten-token").output)
        let personToken = try #require(minted["access_token"] as? String)
        let before = try await harness.emulatorStats()["exchange_requests"] as? Int ?? 0

        let answer = try await harness.request("/v1/exchange/id-porten", ["-X", "POST", "--data-binary", personToken])
        #expect(answer.status == 200, "\(answer.body)")
        let body = try harness.json(answer.body)
        #expect(body["kind"] as? String == "altinn")
        let altinn = try #require(body["access_token"] as? String)
        #expect(try decode(altinn.split(separator: ".")[1])["pid"] as? String == "24908499375")
        let again = try await harness.json(try harness.request("/v1/exchange/id-porten", ["-X", "POST", "--data-binary", personToken + "\n"]).body)
        #expect(again["access_token"] as? String == altinn, "cached by the input's hash")
        #expect(try await harness.emulatorStats()["exchange_requests"] as? Int == before + 1)

        let malformed = try await harness.request("/v1/exchange/id-porten", ["-X", "POST", "--data-binary", "not a token"])
        #expect(malformed.status == 400)
        #expect(try harness.json(malformed.body)["error"] as? String == "invalid_request")
        let maskinportenToken = try await harness.json(try harness.request("/v1/token/notifications").body)["access_token"] as! String
        let foreign = try await harness.request("/v1/exchange/id-porten", ["-X", "POST", "--data-binary", maskinportenToken])
        #expect(foreign.status == 401, "\(foreign.body)")
        #expect(foreign.body.contains("the token was not issued by ID-porten"))
        #expect(try await harness.request("/v1/exchange/id-porten").status == 405)

        let log = try await harness.waitForLog(containing: "ID-porten token exchanged")
        #expect(!log.contains(personToken.prefix(40)))
        #expect(!log.contains(altinn.prefix(40)))
        await harness.stop()
    }
}
