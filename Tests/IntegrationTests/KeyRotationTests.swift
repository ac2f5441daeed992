import BrokerTestSupport
import Foundation
import Testing

/// Rotation through the emulator's self-service API, with `every` and `retire_after` in seconds.
@Suite(.sharedKeys) struct KeyRotationTests {
    static let scopes = #"["altinn:serviceowner/notifications.create","idporten:dcr.read","idporten:dcr.write"]"#

    /// A harness whose client may manage its own keys, holds `extraKeys` the broker did not make,
    /// and a profile rotating every `every`. With `tpm`, the profile's key is one `keygen --tpm2`
    /// made there, registered under the kid it printed.
    func rotatingHarness(every: String, retireAfter: String, extraKeys: [String] = ["foreign-kid"], tpm: SoftwareTPM? = nil) async throws
        -> DaemonHarness
    {
        let harness = try await DaemonHarness(.live)
        var keys = [DaemonHarness.publicJWK(DaemonHarness.key, kid: "daemon-kid")]
        var keyLine = "      encoded_jwk_file: notifications.jwk\n"
        if let tpm {
            let made = try await BrokerExecutable.run(
                ["keygen", "--tpm2", "--tcti", tpm.tcti, "--out", harness.directory.path("tpm.tss2.pem")],
                environment: ProcessInfo.processInfo.environment.merging(tpm.environment) { $1 })
            let printed = try #require(try JSONSerialization.jsonObject(with: Data(made.output.utf8)) as? [[String: Any]])
            let kid = try #require(printed.first?["kid"] as? String)
            keys = [String(made.output.trimmingCharacters(in: .whitespacesAndNewlines).dropFirst().dropLast())]
            keyLine = "      { provider: tpm2, uri: \"file:tpm.tss2.pem\", tcti: \"\(tpm.tcti)\", kid: \(kid) }\n"
        }
        for kid in extraKeys { keys.append(DaemonHarness.publicJWK(try await TestKey.generate(), kid: kid)) }
        try await DaemonHarness.curlHTTP(
            "-X", "POST", "--data", "{\"client_id\":\"\(DaemonHarness.clientID)\",\"scopes\":\(Self.scopes),\"keys\":[\(keys.joined(separator: ","))]}",
            "\(harness.emulatorURL)/_emulator/clients")
        try harness.writeConfig()
        var config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        config = config.replacingOccurrences(
            of: "    altinn_platform: \(harness.emulatorURL)\n",
            with: "    altinn_platform: \(harness.emulatorURL)\n    self_service_api: \(harness.emulatorURL)/api/v1/clients\n")
        config = config.replacingOccurrences(
            of: "    key:\n      encoded_jwk_file: notifications.jwk\n",
            with: "    key:\n\(keyLine)    rotation:\n      every: \(every)\n      retire_after: \(retireAfter)\n")
        config = "state_directory: \(harness.directory.path("state"))\n" + config
        try harness.directory.write("broker.yaml", config, mode: 0o644)
        return harness
    }

    func registeredKids(_ harness: DaemonHarness) async throws -> [String] {
        let clients = try JSONSerialization.jsonObject(with: Data(try await DaemonHarness.curlHTTP("\(harness.emulatorURL)/_emulator/clients").output.utf8))
        let client = (clients as? [[String: Any]])?.first { $0["client_id"] as? String == DaemonHarness.clientID }
        return (client?["keys"] as? [[String: Any]])?.compactMap { $0["kid"] as? String } ?? []
    }

    func wait(_ what: String, _ harness: DaemonHarness, seconds: Int = 20, until condition: () async throws -> Bool) async throws {
        let end = ContinuousClock.now + .seconds(seconds)
        while ContinuousClock.now < end {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(250))
        }
        Issue.record("not within \(seconds) s: \(what)\n\(harness.logs)")
        throw TestSupportError(what)
    }

    @Test(
        "rotation end to end: registered beside the others, used once accepted, the previous key it made removed after retire_after, a key it did not make kept"
    )
    func endToEnd() async throws {
        let harness = try await rotatingHarness(every: "3s", retireAfter: "1s")
        try await harness.startDaemon()
        // Clients are served throughout; every answer is checked.
        var failed: [Int] = []
        var madeKids: [String] = []
        var removed = false
        let end = ContinuousClock.now + .seconds(40)
        while ContinuousClock.now < end, !removed {
            let status = try await harness.request("/v1/token/notifications").status
            if status != 200 { failed.append(status) }
            let kids = try await registeredKids(harness)
            #expect(kids.contains("daemon-kid") && kids.contains("foreign-kid"), "a key the broker did not make is never removed: \(kids)")
            #expect(kids.count <= 5 && Set(kids).count == kids.count, "\(kids)")
            for kid in kids where !["daemon-kid", "foreign-kid"].contains(kid) && !madeKids.contains(kid) { madeKids.append(kid) }
            removed = madeKids.count >= 2 && !kids.contains(madeKids[0])
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(failed.isEmpty, "every client request was answered 200: \(failed)")
        #expect(removed, "the first key rotation made was removed after the second was accepted: made \(madeKids); \(harness.logs)")
        let issued = await (try harness.emulatorStats()["tokens_issued_by_kid"] as? [String: Int]) ?? [:]
        #expect((issued[madeKids.first ?? ""] ?? 0) > 0, "grants were signed with the rotated key: \(issued)")
        let log = harness.logs
        for line in [
            "key rotation: made a new key", "key rotation: registered the new key on the client", "key rotation: Maskinporten accepted the new key",
            "key rotation: removed the previous key from the client",
        ] {
            #expect(log.contains(line), "\(line)")
        }
        // /v1/profiles and the metrics show the rotation.
        let profiles = try await harness.json(try harness.request("/v1/profiles").body)
        let rotation = (profiles["profiles"] as? [[String: Any]])?.first?["rotation"] as? [String: Any]
        #expect(rotation?["last_rotation"] is String, "\(profiles)")
        let metrics = try await harness.request("/metrics").body
        #expect(metrics.contains("maskinporten_broker_key_rotation_seconds_since_last{profile=\"notifications\"}"), "\(metrics)")
        // The state directory: keys 0600, and no key material in the record.
        let state = harness.directory.path("state")
        let keysMode = try FileManager.default.attributesOfItem(atPath: "\(state)/notifications.keys.jwk")[.posixPermissions] as? Int
        #expect(keysMode == 0o600)
        let record = try String(contentsOfFile: "\(state)/notifications.rotation.json", encoding: .utf8)
        #expect(!record.contains("\"d\"") && !record.contains("\"p\"") && record.contains("\"made\""), "\(record)")
        // No part of a key rotation made in any log line.
        let encoded = try String(contentsOfFile: "\(state)/notifications.keys.jwk", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let decoded = try #require(Data(base64Encoded: encoded))
        let set = try #require(try JSONSerialization.jsonObject(with: decoded) as? [String: Any])
        for key in (set["keys"] as? [[String: Any]]) ?? [] {
            for member in ["d", "p", "q", "dp", "dq", "qi"] {
                let value = try #require(key[member] as? String)
                #expect(
                    !harness.logs.contains(value.prefix(20)) && !harness.emulator.output.contains(value.prefix(20)), "private member \(member) in a log")
            }
        }
        #expect(!log.contains(encoded.prefix(40)))
        await harness.stop()
    }

    @Test(
        "rotation of a key in the TPM: new keys made in the TPM and kept wrapped in the state directory, registered, used once accepted, the previous one retired; no private key written"
    )
    func inTheTPM() async throws {
        // Behind a resource manager, as /dev/tpmrm0 is: the configured key, two made ones and
        // the storage key to load them are more than a TPM's three slots.
        let tpm = try SoftwareTPM(resourceManager: true)
        let harness = try await rotatingHarness(every: "3s", retireAfter: "1s", tpm: tpm)
        try await harness.startDaemon(environment: tpm.environment)
        let first = try await registeredKids(harness)
        var made: [String] = []
        var failed: [Int] = []
        try await wait("two keys made in the TPM, the first retired", harness, seconds: 40) {
            let status = try await harness.request("/v1/token/notifications").status
            if status != 200 { failed.append(status) }
            let kids = try await registeredKids(harness)
            #expect(kids.contains { first.contains($0) && $0 != "foreign-kid" } || made.count >= 1, "the configured key stays until a made one is accepted")
            for kid in kids where !first.contains(kid) && !made.contains(kid) { made.append(kid) }
            return made.count >= 2 && !kids.contains(made[0])
        }
        #expect(failed.isEmpty, "every client request was answered 200: \(failed)")
        let issued = await (try harness.emulatorStats()["tokens_issued_by_kid"] as? [String: Int]) ?? [:]
        #expect((issued[made[0]] ?? 0) > 0, "grants were signed by a key rotation made in the TPM: \(issued)")
        #expect(harness.logs.contains("key rotation: made a new key") && harness.logs.contains("location=tpm"), "\(harness.logs)")

        // What rotation keeps: wrapped files and notes, none holding a private key in the clear.
        let directory = harness.directory.path("state/notifications.tpm-keys")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
        #expect(files.contains { $0.hasSuffix(".tss2.pem") } && files.contains { $0.hasSuffix(".json") }, "\(files)")
        #expect(!FileManager.default.fileExists(atPath: harness.directory.path("state/notifications.keys.jwk")), "no JWK made")
        for name in files {
            let text = try String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)
            #expect(!text.contains("BEGIN PRIVATE KEY") && !text.contains("BEGIN RSA PRIVATE KEY") && !text.contains("\"d\""), "\(name)")
            if name.hasSuffix(".tss2.pem") {
                #expect(text.hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"))
                #expect(try FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)")[.posixPermissions] as? Int == 0o600)
            }
        }
        #expect(try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int == 0o700)
        let keys = (try harness.json(try await harness.request("/v1/profiles").body)["profiles"] as? [[String: Any]])?.first?["keys"] as? [[String: Any]]
        #expect(keys?.allSatisfy { $0["location"] as? String == "tpm" } == true, "\(String(describing: keys))")
        await harness.stop()
    }

    @Test("SIGKILL after each rotation step, then a restart: one working key set, no key registered twice, clients served")
    func crashAfterEachStep() async throws {
        let harness = try await rotatingHarness(every: "2s", retireAfter: "1s")
        let steps = [
            "key rotation: made a new key", "key rotation: registered the new key on the client", "key rotation: Maskinporten accepted the new key",
            "key rotation: made a new key", "key rotation: removed the previous key from the client",
        ]
        var outputs = ""
        for step in steps {
            try await harness.startDaemon()
            try await harness.waitForLog(containing: step)
            kill(harness.daemon!.pid, SIGKILL)
            _ = try? await harness.daemon!.stop()
            outputs += harness.logs
            let kids = try await registeredKids(harness)
            #expect(Set(kids).count == kids.count && kids.contains("daemon-kid") && kids.contains("foreign-kid"), "after \(step): \(kids)")
        }
        try await harness.startDaemon()
        #expect(try await harness.request("/v1/token/notifications").status == 200)
        // The keys the broker holds and the client's registration agree once rotation settles.
        try await wait("the made keys are registered", harness) {
            let text = try await harness.request("/v1/profiles").body
            let kids = try await registeredKids(harness)
            let keys =
                ((try harness.json(text)["profiles"] as? [[String: Any]])?.first?["keys"] as? [[String: Any]])?.compactMap { $0["kid"] as? String } ?? []
            return !keys.isEmpty && keys.allSatisfy { kids.contains($0) }
        }
        outputs += harness.logs
        #expect(!outputs.contains("appears twice"), "no key was registered twice")
        #expect(!outputs.contains("level=error"), "\(outputs)")
        await harness.stop()
    }

    /// A daemon whose self-service API answers `status` to every call, once rotation has failed;
    /// its profile is still served.
    func failing(with status: Int) async throws -> DaemonHarness {
        let harness = try await rotatingHarness(every: "1s", retireAfter: "1h")
        try await DaemonHarness.curlHTTP("-X", "POST", "--data", "{\"status\":\(status)}", "\(harness.emulatorURL)/_emulator/faults/jwks")
        try await harness.startDaemon()
        try await harness.waitForLog(containing: "key rotation failed")
        #expect(try await harness.request("/v1/token/notifications").status == 200)
        return harness
    }

    @Test("the self-service API refusing: 503 is retried and recovers; 401 and a full key set are named with their fix; the profile stays ready and served")
    func refusals() async throws {
        let harness = try await rotatingHarness(every: "1s", retireAfter: "1h")
        try await DaemonHarness.curlHTTP("-X", "POST", "--data", #"{"status":503,"count":1}"#, "\(harness.emulatorURL)/_emulator/faults/jwks")
        try await harness.startDaemon()
        try await harness.waitForLog(containing: "key rotation failed")
        try await harness.waitForLog(containing: "key rotation: registered the new key on the client")
        #expect(harness.logs.contains("unavailable by self_service: the self-service API is unavailable (HTTP 503)"), "\(harness.logs)")
        await harness.stop()

        // 401: failing, shown, and the profile still ready.
        let unauthorised = try await failing(with: 401)
        #expect(unauthorised.logs.contains("check that it has the scopes idporten:dcr.read and idporten:dcr.write"), "\(unauthorised.logs)")
        #expect(try await unauthorised.request("/readyz").status == 200)
        let profiles = try await unauthorised.json(try unauthorised.request("/v1/profiles").body)
        let rotation = (profiles["profiles"] as? [[String: Any]])?.first?["rotation"] as? [String: Any]
        #expect(rotation?["state"] as? String == "failing" && (rotation?["error"] as? String)?.contains("HTTP 401") == true, "\(profiles)")
        let metrics = try await unauthorised.request("/metrics").body
        #expect(metrics.contains("maskinporten_broker_key_rotation_failing{profile=\"notifications\"} 1"), "\(metrics)")
        // At least the one failure: under the thread sanitizer's slowdown its retry (backoff from
        // 1 s) can fail too before the metrics are read.
        let failures = metrics.split(separator: "\n").first { $0.hasPrefix("maskinporten_broker_key_rotation_failures_total{profile=\"notifications\"} ") }
        #expect((failures?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 1, "\(metrics)")
        await unauthorised.stop()

        // 400 from the API: the key set refused, named as such.
        let refused = try await failing(with: 400)
        #expect(refused.logs.contains("rejected by self_service: the self-service API refused the request (HTTP 400)"), "\(refused.logs)")
        await refused.stop()

        // Five keys registered already: nothing is removed to make room; the message says what to do.
        let full = try await rotatingHarness(every: "1s", retireAfter: "1h", extraKeys: ["f1", "f2", "f3", "f4"])
        try await full.startDaemon()
        try await full.waitForLog(containing: "key rotation failed")
        #expect(
            full.logs.contains("already has 5 keys registered, Maskinporten's limit: remove one it no longer uses in Samarbeidsportalen"), "\(full.logs)")
        #expect(try await registeredKids(full).count == 5)
        #expect(try await full.request("/v1/token/notifications").status == 200)
        await full.stop()
    }
}
