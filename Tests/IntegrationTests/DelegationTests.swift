import BrokerTestSupport
import Foundation
import Testing

/// One profile, many organisations: the delegation chosen per request, each variant cached on
/// its own. The daemon runs in process.
@Suite(.sharedKeys) struct DelegationTests {
    static let vendor = """
          vendor:
            environment: local
            client_id: \(DaemonHarness.clientID)
            scopes: [altinn:serviceowner/notifications.create]
            exchange: none
            key:
              encoded_jwk_file: notifications.jwk
            delegation:
              system_user_org: any
              consumer_org: [991825827]
              max_variants: 3
        """

    /// The claims of a token (its payload, decoded).
    func claims(_ token: String) throws -> [String: Any] {
        let payload = String(token.split(separator: ".")[1])
        return try #require(try JSONSerialization.jsonObject(with: try TestKey.decodeBase64url(payload)) as? [String: Any])
    }

    func token(_ harness: DaemonHarness, _ query: String) async throws -> (status: Int, body: String) {
        try await harness.request("/v1/token/vendor?\(query)")
    }

    func systemUserOrg(_ token: String) throws -> String? {
        let details = try claims(token)["authorization_details"] as? [[String: Any]]
        return (details?.first?["systemuser_org"] as? [String: Any])?["ID"] as? String
    }

    @Test("two organisations give two tokens, each carrying its own organisation, one fetch each; the base token is apart")
    func twoOrganisations() async throws {
        let harness = try await DaemonHarness(extraProfiles: Self.vendor)
        try await harness.startDaemon()
        try await DaemonHarness.curlHTTP("-X", "POST", "\(harness.emulatorURL)/_emulator/stats/reset")
        let first = try await harness.json(try token(harness, "system_user_org=910000004").body)["access_token"] as? String ?? ""
        let second =
            try await harness.json(try token(harness, "system_user_org=910000012&system_user_external_ref=customer-7").body)["access_token"] as? String
            ?? ""
        #expect(try systemUserOrg(first) == "0192:910000004")
        #expect(try systemUserOrg(second) == "0192:910000012")
        let details = try claims(second)["authorization_details"] as? [[String: Any]]
        #expect(details?.first?["externalRef"] as? String == "customer-7")
        let consumer = try await harness.json(try token(harness, "consumer_org=991825827").body)["access_token"] as? String ?? ""
        #expect((try claims(consumer)["consumer"] as? [String: Any])?["ID"] as? String == "0192:991825827")
        // Served from each variant's cache from now on.
        for _ in 0..<3 {
            #expect(try await harness.json(try token(harness, "system_user_org=910000004").body)["access_token"] as? String == first)
            await #expect(
                try harness.json(try token(harness, "system_user_org=910000012&system_user_external_ref=customer-7").body)["access_token"] as? String
                    == second)
        }
        let stats = try await harness.emulatorStats()
        #expect(stats["tokens_issued"] as? Int == 3, "one fetch per variant: \(stats)")
        #expect(stats["tokens_issued_by_organisation"] as? [String: Int] == ["910000004": 1, "910000012": 1, "991825827": 1], "\(stats)")
        // A forced refresh takes the same parameters, and refreshes that variant only.
        let refreshed = try await harness.json(try harness.request("/v1/token/vendor/refresh?system_user_org=910000004", ["-X", "POST"]).body)
        let renewed = refreshed["access_token"] as? String ?? ""
        let renewedOrg = try systemUserOrg(renewed)
        #expect(renewed != first && renewedOrg == "0192:910000004", "\(refreshed)")
        await #expect((try harness.emulatorStats()["tokens_issued_by_organisation"] as? [String: Int])?["910000004"] == 2)
        let base = try await harness.json(try harness.request("/v1/token/vendor").body)["access_token"] as? String ?? ""
        #expect(try claims(base)["authorization_details"] == nil && base != first)
        // /v1/profiles counts the variants and never names an organisation.
        let profiles = try await harness.request("/v1/profiles").body
        #expect(!profiles.contains("910000004") && !profiles.contains("991825827"), "\(profiles)")
        #expect(profiles.contains("\"variants\":3"), "\(profiles)")
        // Audit lines name the variant; metrics carry no organisation number.
        try await harness.waitForLog(containing: "variant=\"system_user_org=910000004\"")
        let metrics = try await harness.request("/metrics").body
        #expect(!metrics.contains("910000004"), "\(metrics)")
        await harness.stop()
    }

    @Test("200 concurrent cold requests for one new organisation make one fetch")
    func singleFlight() async throws {
        let harness = try await DaemonHarness(extraProfiles: Self.vendor)
        try await harness.startDaemon()
        try await DaemonHarness.curlHTTP("-X", "POST", "--data", #"{"delay_ms":300}"#, "\(harness.emulatorURL)/_emulator/faults/token")
        try await DaemonHarness.curlHTTP("-X", "POST", "\(harness.emulatorURL)/_emulator/stats/reset")
        let config = harness.directory.path("parallel.curl")
        let line = "url = \"http://localhost/v1/token/vendor?system_user_org=910000020\"\noutput = \"/dev/null\"\n"
        try harness.directory.write("parallel.curl", String(repeating: line, count: 200), mode: 0o644)
        let socketPath = harness.socketPath
        let result = try await Command.run(
            "curl", ["-sS", "--parallel", "--parallel-max", "200", "--unix-socket", socketPath, "-K", config, "-w", "%{http_code}\n"])
        let codes = result.output.split(separator: "\n")
        #expect(codes.count == 200 && codes.allSatisfy { $0 == "200" }, "\(result.output) \(result.errorOutput)")
        let stats = try await harness.emulatorStats()
        #expect(stats["tokens_issued"] as? Int == 1, "\(stats)")
        await harness.stop()
    }

    @Test("refusals: a parameter not permitted and a malformed number give 400, an organisation off the list 403, none reaches upstream")
    func refusals() async throws {
        let harness = try await DaemonHarness(extraProfiles: Self.vendor)
        try await harness.startDaemon()
        try await DaemonHarness.curlHTTP("-X", "POST", "\(harness.emulatorURL)/_emulator/stats/reset")
        let cases: [(String, String, Int, String)] = [
            ("notifications", "system_user_org=910000004", 400, "does not let callers choose system_user_org"),
            ("vendor", "system_user_org=910000005", 400, "system_user_org: "),
            ("vendor", "system_user_org=12345", 400, "exactly 9 digits"),
            ("vendor", "system_user_external_ref=x", 400, "needs system_user_org"),
            ("vendor", "consumer_org=910000004", 403, "does not let callers choose consumer_org 910000004"),
        ]
        for (profile, query, status, mentions) in cases {
            let answer = try await harness.request("/v1/token/\(profile)?\(query)")
            #expect(answer.status == status, "\(query): \(answer.body)")
            #expect(answer.body.contains(mentions), "\(query): \(answer.body)")
            #expect(answer.body.contains(status == 400 ? "invalid_request" : "access_denied"))
        }
        #expect(try await harness.emulatorStats()["token_requests"] as? Int == 0)
        await harness.stop()
    }

    @Test("an organisation Maskinporten refuses gives 502 with its error, and the others are served; max_variants evicts the least recently used")
    func refusedOrganisationAndEviction() async throws {
        let harness = try await DaemonHarness(extraProfiles: Self.vendor)
        try await DaemonHarness.curlHTTP("-X", "PUT", "--data", #"{"refused_organisations":["910000039"]}"#, "\(harness.emulatorURL)/_emulator/settings")
        try await harness.startDaemon()
        let refused = try await token(harness, "system_user_org=910000039")
        #expect(refused.status == 502, "\(refused.body)")
        #expect(refused.body.contains("MP-150"), "\(refused.body)")
        #expect(try await token(harness, "system_user_org=910000004").status == 200)
        #expect(try await harness.request("/v1/token/vendor").status == 200)
        #expect(try await harness.request("/readyz").status == 200, "a refused variant does not make the profile unready")
        // Three variants at most: each new one past that evicts the least recently used.
        #expect(try await token(harness, "system_user_org=910000047").status == 200)
        #expect(try await token(harness, "system_user_org=910000055").status == 200)  // evicts 910000039's
        #expect(try await token(harness, "system_user_org=910000063").status == 200)  // evicts 910000004's
        try await DaemonHarness.curlHTTP("-X", "POST", "\(harness.emulatorURL)/_emulator/stats/reset")
        #expect(try await token(harness, "system_user_org=910000055").status == 200)
        #expect(try await harness.emulatorStats()["tokens_issued"] as? Int == 0, "a kept variant is served from its cache")
        #expect(try await token(harness, "system_user_org=910000004").status == 200)
        #expect(try await harness.emulatorStats()["tokens_issued"] as? Int == 1, "an evicted variant is fetched anew")
        await harness.stop()
    }
}
