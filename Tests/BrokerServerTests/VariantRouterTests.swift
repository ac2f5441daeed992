import BrokerTestSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import BrokerConfig
@testable import BrokerPOSIX
@testable import BrokerServer
@testable import BrokerTokens
@testable import MaskinportenEmulator

/// A variant's token on the request path: fetched once through the router, then answered by
/// `handleImmediately`, the path the fast path's threads take, as the profile's own token is.
@Suite("Router: variants on the immediate path")
struct VariantRouterTests {
    @Test(
        "the query: percent-decoded, the last of a name given twice, empty pairs skipped",
        arguments: [
            ("system_user_org=910000004", ["system_user_org": "910000004"]),
            ("a=1&&b=%2Fx%20y&a=2&c", ["a": "2", "b": "/x y", "c": ""]),
            ("system_user_external_ref=%E2%9C%93&bad=%zz", ["system_user_external_ref": "\u{2713}", "bad": ""]),
            ("=v&&", ["": "v"]),
        ])
    func query(_ text: String, _ expected: [String: String]) {
        #expect(BrokerRequest.parseQuery(Substring(text)) == expected)
    }

    @Test("a cached variant is answered immediately (the fast path), not handed to the slower path")
    func cachedVariantIsImmediate() async throws {
        let logger = Logger(label: "variant-router-tests", factory: { _ in SwiftLogNoOpLogHandler() })
        let server = try await EmulatorServer.bindForTests(logger: logger)
        let serving = Task { try await server.run() }
        defer { serving.cancel() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("variant-router-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: directory) }
        let configPath = try DemoSetup.write(in: directory, for: server.emulator)
        let text = try String(contentsOfFile: configPath, encoding: .utf8)
        try (text + "\n    delegation:\n      system_user_org: any\n").write(toFile: configPath, atomically: false, encoding: .utf8)
        let loaded = try LoadedConfiguration.load(path: configPath)
        let broker = try TokenBroker(configuration: loaded.configuration, credentials: loaded.credentials, logger: logger)
        let state = ServingState(loaded)
        let output = try LineLogHandler.Output(format: .logfmt, descriptor: open("/dev/null", O_WRONLY | O_CLOEXEC))
        let router = Router(broker: broker, state: { state }, metrics: ServerMetrics(), auditor: Auditor(output: output, level: .info) { 60 })
        do {
            try await check(router, broker)
        } catch {
            await broker.shutdown()
            throw error
        }
        // A broker dropped without its shutdown stops the process (the HTTP client insists).
        await broker.shutdown()
    }

    private func check(_ router: Router, _ broker: TokenBroker) async throws {
        let me = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
        let request = BrokerRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/token/demo?system_user_org=991825827"), body: ByteBuffer())

        #expect(router.handleImmediately(request, peer: me) == nil, "not cached yet: the slower path fetches")
        guard case .whole(let fetched) = await router.handle(request, peer: me) else {
            Issue.record("a token route's answer is the broker's own")
            return
        }
        #expect(fetched.status == .ok)
        let immediate = try #require(router.handleImmediately(request, peer: me), "cached: answered on the immediate path")
        #expect(immediate.status == .ok)
        func token(_ response: BrokerResponse) throws -> String? {
            try (JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any])?["access_token"] as? String
        }
        let cached = try token(immediate)
        #expect(cached != nil)
        #expect(try cached == token(fetched), "the variant's cached token")
        // A refused choice is answered immediately too, without a cache being made.
        let refused = BrokerRequest(head: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/v1/token/demo?consumer_org=991825827"), body: ByteBuffer())
        #expect(router.handleImmediately(refused, peer: me)?.status == .badRequest)
        #expect(broker.variantCount(of: "demo") == 1)
    }
}
