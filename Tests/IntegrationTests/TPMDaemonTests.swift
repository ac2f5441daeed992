import BrokerTestSupport
import Foundation
import Testing

/// The daemon with a profile whose key is in a TPM (a swtpm of the test's own, the key made by
/// `keygen --tpm2`), beside a profile with a key file: the process is the thing tested, as the
/// TPM going away and coming back is seen only by a running daemon.
@Suite("A daemon with a key in a TPM")
struct TPMDaemonTests {
    /// The profile `tpm`, whose key is `tpm.tss2.pem` in the harness's directory, named `kid` as
    /// keygen printed it.
    static func profile(_ tpm: SoftwareTPM, kid: String) -> String {
        """
          tpm:
            environment: local
            client_id: tpm-client
            scopes: [altinn:serviceowner/notifications.create]
            key: { provider: tpm2, uri: "file:tpm.tss2.pem", tcti: "\(tpm.tcti)", kid: \(kid) }
        """
    }

    /// A key made in `tpm` by `keygen --tpm2`, registered at the emulator for client
    /// `tpm-client`; its kid.
    static func makeKey(in tpm: SoftwareTPM, for harness: DaemonHarness) async throws -> String {
        let made = try await BrokerExecutable.run(["keygen", "--tpm2", "--tcti", tpm.tcti, "--out", harness.directory.path("tpm.tss2.pem")])
        #expect(made.status == 0, "\(made.errorOutput)")
        try await harness.emulatorCurl(
            "-X", "POST", "--data",
            "{\"client_id\":\"tpm-client\",\"scopes\":[\"altinn:serviceowner/notifications.create\"],\"keys\":\(made.output)}",
            "\(harness.emulatorURL)/_emulator/clients")
        let printed = try JSONSerialization.jsonObject(with: Data(made.output.utf8)) as? [[String: Any]]
        return try #require(printed?.first?["kid"] as? String)
    }

    static func profileEntry(_ harness: DaemonHarness, _ name: String) async throws -> [String: Any] {
        let profiles = try harness.json(try await harness.request("/v1/profiles").body)["profiles"] as? [[String: Any]]
        return profiles?.first { $0["profile"] as? String == name } ?? [:]
    }

    @Test(
        "swtpm killed: the TPM profile reports the TPM stopped answering and the key-file profile keeps serving; swtpm back: served again with no restart; no private key in any file or log"
    )
    func tpmStopsAnswering() async throws {
        let tpm = try SoftwareTPM()
        let harness = try await DaemonHarness(.live)
        do {
            let kid = try await Self.makeKey(in: tpm, for: harness)
            try harness.writeConfig(extraProfiles: Self.profile(tpm, kid: kid))
            try await harness.startDaemon()
            let first = try await harness.request("/v1/token/tpm")
            #expect(first.status == 200, "\(first.body) \(harness.logs)")
            let signed = { (try await harness.emulatorStats()["tokens_issued_by_kid"] as? [String: Int])?[kid] ?? 0 }
            #expect(try await signed() == 1)
            // Where each key lives, in /v1/profiles and the metrics.
            let key = (try await Self.profileEntry(harness, "tpm")["keys"] as? [[String: Any]])?.first ?? [:]
            #expect(key["location"] as? String == "tpm" && key["device"] as? String == tpm.tcti, "\(key)")
            let fileKey = (try await Self.profileEntry(harness, "notifications")["keys"] as? [[String: Any]])?.first ?? [:]
            #expect(fileKey["location"] as? String == "memory" && fileKey["device"] == nil, "\(fileKey)")
            let metrics = try await harness.request("/metrics").body
            #expect(metrics.contains(#"maskinporten_broker_key_location{profile="tpm",kid="\#(kid)",location="tpm"} 1"#), "\(metrics)")
            #expect(metrics.contains(#"maskinporten_broker_key_location{profile="notifications",kid="daemon-kid",location="memory"} 1"#))

            tpm.kill()
            let forced = try await harness.request("/v1/token/tpm/refresh", ["-X", "POST"])
            #expect(forced.status == 503 && forced.body.contains("the TPM stopped answering (\(tpm.tcti))"), "\(forced)")
            let failing = try await Self.profileEntry(harness, "tpm")
            #expect(failing["state"] as? String == "degraded", "the token in hand is still served: \(failing)")
            #expect((failing["last_error"] as? String ?? "").contains("the TPM stopped answering"), "\(failing)")
            #expect(try await harness.request("/v1/token/tpm").status == 200, "the token fetched before is still good")
            #expect(try await harness.request("/v1/token/notifications").status == 200, "the other profile does not notice")

            // Back, on the state it had: the key file loads again, and the retries find it.
            try tpm.start()
            let end = ContinuousClock.now + .seconds(30)
            var entry: [String: Any] = [:]
            while ContinuousClock.now < end {
                entry = try await Self.profileEntry(harness, "tpm")
                if entry["state"] as? String == "ready" { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            #expect(entry["state"] as? String == "ready" && entry["last_error"] == nil, "\(entry) \(harness.logs)")
            #expect(try await signed() == 2, "a grant signed by the key loaded again")

            // What the daemon wrote holds no private key: only the TPM-wrapped file and the test's
            // own key file hold key material.
            let written = try FileManager.default.subpathsOfDirectory(atPath: harness.directory.url.path)
            for name in written where name != "notifications.jwk" {
                guard let text = try? String(contentsOfFile: harness.directory.path(name), encoding: .utf8) else { continue }
                #expect(!text.contains("BEGIN PRIVATE KEY") && !text.contains("BEGIN RSA PRIVATE KEY") && !text.contains("\"d\""), "\(name)")
            }
            #expect(!harness.logs.contains("PRIVATE KEY") && harness.logs.contains("the TPM stopped answering"))
        } catch {
            await harness.stop()
            throw error
        }
        await harness.stop()
    }

    @Test(
        "a key file wrapped by another TPM, and a TPM that does not answer: check-config fails naming the fix, serve serves the other profiles, and the TPM's library writes nothing of its own"
    )
    func anotherTPM() async throws {
        let tpm = try SoftwareTPM()
        let other = try SoftwareTPM()
        let harness = try await DaemonHarness(.live)
        do {
            let kid = try await Self.makeKey(in: tpm, for: harness)
            try harness.writeConfig(extraProfiles: Self.profile(other, kid: kid))
            let check = try await BrokerExecutable.run(["check-config", "--config", harness.configPath])
            let refused = "the TPM refused the key file file:\(harness.directory.path("tpm.tss2.pem")): it was wrapped by another TPM"
            #expect(
                check.status == 1 && check.errorOutput.contains(refused) && check.errorOutput.contains("make a key on this machine with keygen --tpm2"),
                "\(check)")
            #expect(!check.errorOutput.contains("esys") && !check.errorOutput.contains("tcti:"), "\(check.errorOutput)")

            try await harness.startDaemon()
            let answer = try await harness.request("/v1/token/tpm")
            #expect(answer.status == 503 && answer.body.contains("wrapped by another TPM"), "\(answer)")
            #expect(try await harness.request("/v1/token/notifications").status == 200)
            await harness.stop()

            other.kill()
            let gone = try await BrokerExecutable.run(["check-config", "--config", harness.configPath])
            #expect(gone.status == 1 && gone.errorOutput.contains("the TPM did not answer (\(other.tcti)): check that the device exists"), "\(gone)")
            #expect(!gone.errorOutput.contains("esys") && !gone.errorOutput.contains("tcti:"), "\(gone.errorOutput)")
        } catch {
            await harness.stop()
            throw error
        }
    }
}
