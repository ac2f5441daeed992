import BrokerTestSupport
import Foundation
import Testing

/// A changed key file takes effect without a signal: replaced by rename, reached through a
/// swapped symlink as Kubernetes secret volumes do, and a broken one keeps the key in use.
@Suite(.sharedKeys) struct KeyFileWatchTests {
    @Test("key files are watched: rename, symlink swap and a broken file, each seen in the grants within 5 s without a signal")
    func keyFilesAreWatched() async throws {
        let keys = [("watch-b", try await TestKey.generate()), ("watch-c", try await TestKey.generate())]
        let harness = try await DaemonHarness(.live)
        // The client has every key registered: what is asserted is which one the daemon signs with.
        var registered = [DaemonHarness.publicJWK(DaemonHarness.key, kid: "daemon-kid")]
        for (kid, key) in keys { registered.append(DaemonHarness.publicJWK(key, kid: kid)) }
        try await DaemonHarness.curlHTTP(
            "-X", "POST", "--data",
            "{\"client_id\":\"\(DaemonHarness.clientID)\",\"scopes\":[\"altinn:serviceowner/notifications.create\"],\"keys\":[\(registered.joined(separator: ","))]}",
            "\(harness.emulatorURL)/_emulator/clients")
        let secret = harness.directory.path("secret")
        try FileManager.default.createDirectory(atPath: secret, withIntermediateDirectories: true)
        try harness.directory.write("secret/key.jwk", DaemonHarness.key.encodedJwk(kid: "daemon-kid", alg: nil), mode: 0o600)
        try harness.writeConfig()
        let config = try String(contentsOfFile: harness.configPath, encoding: .utf8)
        try harness.directory.write(
            "broker.yaml", config.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "encoded_jwk_file: secret/key.jwk"), mode: 0o644)
        try await harness.startDaemon()
        #expect(try await harness.request("/v1/token/notifications").status == 200)

        /// Makes `change`, then waits until the emulator has issued a token for a grant signed
        /// with `kid` since. (Counted before the change: the daemon may act on it at once.)
        func expectGrants(from kid: String, _ what: String, after change: () throws -> Void) async throws {
            let before = try await issued(harness)[kid] ?? 0
            try change()
            let asked = ContinuousClock.now
            while ContinuousClock.now - asked < .seconds(5), (try await issued(harness)[kid] ?? 0) <= before {
                try await Task.sleep(for: .milliseconds(100))
            }
            let after = try await issued(harness)[kid] ?? 0
            #expect(after > before, "\(what): no grant signed with \(kid) within 5 s; \(harness.logs)")
            #expect(try await harness.request("/v1/token/notifications").status == 200)
        }

        // Replaced by rename, as editors and install(1) do.
        try harness.directory.write("secret/.key.jwk.new", keys[0].1.encodedJwk(kid: "watch-b", alg: nil), mode: 0o600)
        try await expectGrants(from: "watch-b", "a key file replaced by rename") {
            #expect(rename(harness.directory.path("secret/.key.jwk.new"), harness.directory.path("secret/key.jwk")) == 0)
        }

        // The Kubernetes layout: key.jwk -> ..data/key.jwk, ..data -> a timestamped directory,
        // and an update swaps ..data by renaming a new symlink over it.
        func swapData(to version: String, _ contents: String) throws {
            try FileManager.default.createDirectory(atPath: "\(secret)/\(version)", withIntermediateDirectories: false)
            try harness.directory.write("secret/\(version)/key.jwk", contents, mode: 0o600)
            try FileManager.default.createSymbolicLink(atPath: "\(secret)/..data_tmp", withDestinationPath: version)
            #expect(rename("\(secret)/..data_tmp", "\(secret)/..data") == 0)
        }
        try swapData(to: "..2026_11_30_01", keys[1].1.encodedJwk(kid: "watch-c", alg: nil))
        try FileManager.default.createSymbolicLink(atPath: "\(secret)/key.jwk.link", withDestinationPath: "..data/key.jwk")
        try await expectGrants(from: "watch-c", "a key file replaced by a symlink into ..data") {
            #expect(rename("\(secret)/key.jwk.link", "\(secret)/key.jwk") == 0)
        }
        try await expectGrants(from: "daemon-kid", "..data swapped to a new directory") {
            try swapData(to: "..2026_11_30_02", DaemonHarness.key.encodedJwk(kid: "daemon-kid", alg: nil))
            try FileManager.default.removeItem(atPath: "\(secret)/..2026_11_30_01")
        }

        // A broken file: the key in use stays, the reason is logged and counted.
        try swapData(to: "..2026_11_30_03", "-----BEGIN PRIVATE KEY-----\nbroken\n")
        try await harness.waitForLog(containing: "the key in use is kept")
        let token = try await harness.request("/v1/token/notifications")
        #expect(token.status == 200)
        let log = harness.logs
        #expect(log.contains("msg=\"reloading keys: a key file changed\""), "\(log)")
        #expect(
            log.contains(
                "level=error msg=\"the new key cannot be used; the key in use is kept\" error=\"\(harness.configPath): profiles.notifications.key.encoded_jwk_file:"
            ), "\(log)")
        #expect(!log.contains("msg=\"cannot be served\""), "\(log)")
        let metrics = try await harness.request("/metrics").body
        // One failure or more: the swap is several directory events, and each reload that reads the
        // broken file counts.
        let failures = metrics.split(separator: "\n").first { $0.hasPrefix("maskinporten_broker_key_reload_failures_total{profile=\"notifications\"} ") }
        #expect((failures?.split(separator: " ").last.flatMap { Int($0) } ?? 0) >= 1, "\(metrics)")
        let profiles = try await harness.json(try harness.request("/v1/profiles").body)
        let keysShown = ((profiles["profiles"] as? [[String: Any]])?.first?["keys"] as? [[String: Any]])?.compactMap { $0["kid"] as? String }
        #expect(keysShown == ["daemon-kid"], "the kept key is the one shown: \(profiles)")
        #expect(!log.contains("SIGHUP"))
        await harness.stop()
    }

    private func issued(_ harness: DaemonHarness) async throws -> [String: Int] {
        (try await harness.emulatorStats()["tokens_issued_by_kid"] as? [String: Int]) ?? [:]
    }
}
