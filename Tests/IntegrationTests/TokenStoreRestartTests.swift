import BrokerTestSupport
import CSystemShims
import Foundation
import Testing

@testable import BrokerPOSIX

#if canImport(Glibc)
    import Glibc
#endif

/// Tokens through a restart as systemd carries them, played here by the test: it takes the
/// memfd the daemon hands over with FDSTORE=1, and starts the next daemon with it as
/// `$LISTEN_FDS` names it. (The package under a real systemd does the same in the nspawn test.)
@Suite("Tokens through restarts: the daemon and a stand-in for systemd's store", .timeLimit(.minutes(2)))
struct TokenStoreRestartTests {
    /// systemd's side of `NOTIFY_SOCKET`: what the daemon stores.
    final class StandInManager: @unchecked Sendable {
        let path: String
        private let socket: RawSocket
        private var fd: Int32 { socket.fd }
        private(set) var stored: Int32 = -1

        init(path: String) throws {
            self.path = path
            socket = try RawSocket.datagramListener(path)
        }

        deinit {
            if stored >= 0 { close(stored) }
        }

        /// Reads notifications until one stores a descriptor named `tokens` (keeping the newest),
        /// or `timeout` passes; true when one came.
        func awaitStore(timeout: Duration = .seconds(5)) -> Bool {
            let end = ContinuousClock.now + timeout
            var got = false
            while ContinuousClock.now < end {
                var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&poller, 1, got ? 200 : 100) > 0 else {
                    if got { return true }
                    continue
                }
                var buffer = [UInt8](repeating: 0, count: 4096)
                var descriptor: Int32 = -1
                let count = CSystemShims_receiveWithDescriptor(fd, &buffer, buffer.count, &descriptor)
                let text = String(decoding: buffer[0..<max(count, 0)], as: UTF8.self)
                if text.contains("FDSTORE=1"), text.contains("FDNAME=tokens"), descriptor >= 0 {
                    if stored >= 0 { close(stored) }
                    stored = descriptor
                    got = true
                } else if descriptor >= 0 {
                    close(descriptor)
                }
            }
            return got
        }
    }

    /// `serve`, started as systemd starts it after a restart: the stored memfd as fd 3, named
    /// `tokens` in `$LISTEN_FDNAMES`, `$LISTEN_PID` the daemon's own.
    static func restart(_ harness: DaemonHarness, with stored: Int32, manager: StandInManager) async throws {
        let script = "exec 3</proc/\(getpid())/fd/\(stored); LISTEN_PID=$$ LISTEN_FDS=1 LISTEN_FDNAMES=tokens exec \"$0\" serve --config \"$1\""
        try await harness.startDaemon(
            environment: ["NOTIFY_SOCKET": manager.path], arguments: ["-c", script, try BrokerExecutable.path, harness.configPath], executable: "/bin/sh")
    }

    @Test("a restart with upstream down: the kept token is served at once, /v1/profiles says restored, the log line says what; upstream is not asked")
    func restart() async throws {
        let harness = try await DaemonHarness(.live)
        let manager = try StandInManager(path: harness.directory.path("notify.sock"))
        try await harness.startDaemon(environment: ["NOTIFY_SOCKET": manager.path])
        let first = try await harness.request("/v1/token/notifications")
        #expect(first.status == 200)
        #expect(manager.awaitStore(), "the daemon stores its token: \(harness.logs)")
        // Upstream down: every token and exchange call refused from now on.
        try await harness.emulatorCurl("-X", "POST", "--data", #"{"status":503,"count":1000}"#, "\(harness.emulatorURL)/_emulator/faults/token")
        try await harness.emulatorCurl("-X", "POST", "--data", #"{"status":503,"count":1000}"#, "\(harness.emulatorURL)/_emulator/faults/exchange")
        let asked = try await harness.emulatorStats()["token_requests"] as? Int
        #expect(try await harness.daemon!.stop() == 0)
        #expect(manager.awaitStore(timeout: .seconds(2)), "the daemon stores its tokens once more as it stops")
        #expect(SealedMemoryFile.seals(manager.stored).map(SealedMemoryFile.isFixed) == true, "what it stored is sealed")

        try await Self.restart(harness, with: manager.stored, manager: manager)
        let again = try await harness.request("/v1/token/notifications")
        #expect(again.status == 200 && Self.token(again.body) == Self.token(first.body), "the same token, restored: \(harness.logs)")
        let profiles = try await harness.request("/v1/profiles")
        #expect(profiles.body.contains(#""origin":"restored""#), "\(profiles.body)")
        let line = try await harness.waitForLog(containing: "tokens restored from systemd's file descriptor store")
        #expect(line.contains("restored=1"), "\(line)")
        let metrics = try await harness.request("/metrics").body
        #expect(metrics.contains("maskinporten_broker_tokens_restored_total 1"), "\(metrics)")
        #expect(try await harness.emulatorStats()["token_requests"] as? Int == asked, "no token was asked for")
        await harness.stop()
    }

    static func token(_ body: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["access_token"] as? String
    }

    @Test("a kept file that is not one (garbage, or not sealed): one warning, and the daemon starts as without it")
    func badStore() async throws {
        let harness = try await DaemonHarness(.live)
        let manager = try StandInManager(path: harness.directory.path("notify.sock"))
        for (name, fd) in [
            ("garbage", try SealedMemoryFile.make(name: "tokens", contents: Array(String(repeating: "not a store file at all, just text. ", count: 4).utf8))),
            ("unsealed", CSystemShims_sealableMemoryFile("tokens")),
        ] {
            defer { close(fd) }
            try await Self.restart(harness, with: fd, manager: manager)
            let answer = try await harness.request("/v1/token/notifications")
            #expect(answer.status == 200, "\(name): fetched as without a store: \(answer.body)")
            let logs = try await harness.waitForLog(containing: "the tokens kept by systemd were not read; starting without them")
            #expect(logs.contains(name == "garbage" ? "does not start as a store file" : "not sealed against writing"), "\(name): \(logs)")
            _ = try await harness.daemon!.stop()
        }
        await harness.stop()
    }
}
