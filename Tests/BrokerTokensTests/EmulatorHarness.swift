import BrokerTestSupport
import Foundation
import Logging

@testable import BrokerConfig
@testable import BrokerCrypto
@testable import BrokerTokens
@testable import BrokerUpstream
@testable import MaskinportenEmulator

/// An emulator on a free loopback port with the test key registered, and a configuration
/// pointing at it.
struct EmulatorHarness {
    let server: EmulatorServer
    let fixture: ConfigFixture
    var emulator: Emulator { server.emulator }

    static let scope = "altinn:serviceowner/notifications.create"

    /// Runs `body` with a started emulator, stopping it afterwards.
    static func with<T: Sendable>(_ body: (EmulatorHarness) async throws -> T) async throws -> T {
        try await SharedKeys.prepare()
        let server = try await EmulatorServer.bindForTests(logger: Logger(label: "test-emulator", factory: { _ in SwiftLogNoOpLogHandler() }))
        let task = Task { try await server.run() }
        defer { task.cancel() }
        server.emulator.register(
            RegisteredClient(
                clientID: "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17", scopes: [scope],
                keys: [try JWK.parseEncoded(Array(Keys.rsa2048.jwkJSON(kid: "test-kid", alg: nil).utf8)).publicPart]
            ))
        return try await body(EmulatorHarness(server: server, fixture: try ConfigFixture()))
    }

    /// A configuration with one profile `notifications` against the emulator.
    /// With `replacingKey`, those lines stand in the profile's `key:` section's place.
    func configuration(
        exchange: String = "altinn", minValid: Int = 10, extra: String = "", replacingKey: String? = nil
    ) throws -> (BrokerConfiguration, [String: SigningCredentials]) {
        var profile = ConfigFixture.profile.replacingOccurrences(of: "environment: tt02", with: "environment: local")
        if let replacingKey { profile = profile.replacingOccurrences(of: "    key:\n      encoded_jwk_file: notifications.jwk", with: replacingKey) }
        let yaml = """
            refresh:
              min_valid_seconds: \(minValid)
            environments:
              local:
                maskinporten_issuer: \(emulator.issuer)
                altinn_platform: \(emulator.altinnPlatform)
            """ + "\n" + profile + "\n    exchange: \(exchange)" + extra
        let path = try fixture.write(yaml)
        let configuration = try ConfigLoader.load(path: path)
        var credentials: [String: SigningCredentials] = [:]
        for profile in configuration.profiles {
            credentials[profile.name] = try KeyLoader(environment: [:]).load(profile, file: path)
        }
        return (configuration, credentials)
    }

    /// A broker for the configuration, with a fast retry policy and short timeouts.
    func broker(
        exchange: String = "altinn", minValid: Int = 10, policy: RetryPolicy = RetryPolicy().scaled(by: 0.1),
        timeouts: UpstreamClient.Timeouts = UpstreamClient.Timeouts(connect: .seconds(2), total: .seconds(10)),
        clock: TokenClock = .system, logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) throws -> (TokenBroker, TokenCache) {
        let (configuration, credentials) = try configuration(exchange: exchange, minValid: minValid)
        let broker = try TokenBroker(
            configuration: configuration, credentials: credentials, policy: policy, timeouts: timeouts, clock: clock, logger: logger)
        return (broker, broker.cache(for: "notifications")!)
    }

    /// Moves `clock` on by `duration`, and the emulator's clock with it: its grants' `iat`
    /// window and its tokens' `exp` go by the same virtual time as the broker.
    func advance(_ clock: ManualClock, by duration: Duration) {
        clock.advance(by: duration)
        emulator.settings.clockOffset = Int(clock.date.timeIntervalSinceNow.rounded())
    }

    /// Moves virtual time on by `duration`, then waits (in real time) for a refresh the step
    /// started to end: what a test checks next is the cache as the step left it.
    func advance(_ clock: ManualClock, by duration: Duration, settling cache: TokenCache) async -> Bool {
        advance(clock, by: duration)
        return await eventually { await cache.status().state != .refreshing }
    }
}

/// Runs `body` with `broker`, and shuts the broker down whatever `body` does: a broker dropped
/// without its shutdown stops the test process (the HTTP client insists on it).
func shuttingDown<T>(_ broker: TokenBroker, _ body: () async throws -> T) async throws -> T {
    do {
        let result = try await body()
        await broker.shutdown()
        return result
    } catch {
        await broker.shutdown()
        throw error
    }
}

/// Collects log records, to check what the broker says (and that it never says a token).
final class CapturedLogs: @unchecked Sendable {
    private let lock = NSLock()
    private var records: [String] = []

    var lines: [String] { lock.withLock { records } }

    func append(_ line: String) { lock.withLock { records.append(line) } }

    var logger: Logger {
        Logger(label: "captured") { _ in CapturingHandler(logs: self) }
    }

    struct CapturingHandler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = self.metadata.merging(event.metadata ?? [:]) { $1 }
            logs.append("\(event.level) \(event.message) \(all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        }
    }
}

/// Runs `body` while `broker`'s refresh loop runs beside it, as the daemon's service group runs
/// it; the loop is cancelled, and has ended, when `body` returns.
func whileRefreshing<T>(_ broker: TokenBroker, _ body: () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await broker.run() }
        defer { group.cancelAll() }
        return try await body()
    }
}
