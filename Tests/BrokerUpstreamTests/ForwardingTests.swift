import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import BrokerConfig
@testable import BrokerUpstream

/// The gateway's own HTTP client, in process on `NIOAsyncTestingChannel`: what goes out on a
/// kept-alive connection, what comes back, when the connection is kept, and the proxy's tunnel.
@Suite("The gateway's forwarding client")
struct ForwardingTests {
    static let endpoint = ForwardingEndpoint(secure: false, host: "platform.altinn.test", port: 8080, proxied: false)

    @Test("platform URLs as endpoint and target: default ports, IPv6, a query without a path; what is not a URL is refused")
    func endpoints() throws {
        let (secure, target) = try #require(ForwardingEndpoint.parse("https://platform.tt02.altinn.no/notifications/api/v1/orders?x=1", proxied: false))
        #expect(secure == ForwardingEndpoint(secure: true, host: "platform.tt02.altinn.no", port: 443, proxied: false))
        #expect(target == "/notifications/api/v1/orders?x=1" && secure.authority == "platform.tt02.altinn.no")
        let (plain, bare) = try #require(ForwardingEndpoint.parse("http://127.0.0.1:8443?seq=1", proxied: true))
        #expect(plain == ForwardingEndpoint(secure: false, host: "127.0.0.1", port: 8443, proxied: true))
        #expect(bare == "/?seq=1" && plain.authority == "127.0.0.1:8443")
        let (v6, _) = try #require(ForwardingEndpoint.parse("https://[::1]:9443/x", proxied: false))
        #expect(v6.host == "::1" && v6.port == 9443 && v6.authority == "[::1]:9443")
        for bad in ["ftp://altinn.no/", "https://", "https://altinn.no:0/", "https://altinn.no:x/", "https://user@altinn.no/", "https://[::1/"] {
            #expect(ForwardingEndpoint.parse(bad, proxied: false) == nil, "\(bad)")
        }
    }

    /// A connection on a testing channel, in its pool.
    static func connection() async throws -> (NIOAsyncTestingChannel, ForwardingPool, ForwardingConnection) {
        let channel = NIOAsyncTestingChannel()
        let pool = ForwardingPool(loop: channel.eventLoop)
        let connection = ForwardingConnection(endpoint: endpoint, pool: pool, idleRead: .seconds(300))
        try await channel.pipeline.addHTTPClientHandlers().get()
        try await channel.pipeline.addHandler(connection).get()
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).get()
        try await channel.eventLoop.submit { pool.opened(connection) }.get()
        return (channel, pool, connection)
    }

    /// Sends a POST of `body` on `connection`; the bytes written.
    static func send(_ body: String, on channel: NIOAsyncTestingChannel, _ connection: ForwardingConnection, timeout: TimeAmount = .seconds(30))
        async throws -> (EventLoopFuture<ForwardedAnswer>, String)
    {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/notifications/api/v1/future/orders")
        head.headers.add(name: "Host", value: endpoint.authority)
        head.headers.add(name: "Content-Length", value: String(body.utf8.count))
        head.headers.add(name: "Authorization", value: "Bearer token")
        let promise = channel.eventLoop.makePromise(of: ForwardedAnswer.self)
        try await channel.eventLoop.submit { connection.send(head, body: ByteBuffer(string: body), timeout: timeout, promise: promise) }.get()
        var written = ""
        while let chunk = try await channel.readOutbound(as: ByteBuffer.self) { written += String(buffer: chunk) }
        return (promise.futureResult, written)
    }

    static func body(_ answer: ForwardedAnswer) async throws -> String {
        var text = ""
        for try await chunk in answer.body { text += String(buffer: chunk) }
        return text
    }

    @Test("a call goes out whole; Altinn's head is handed back, then its body; the connection goes back to the pool for the next call")
    func keptAlive() async throws {
        let (channel, pool, connection) = try await Self.connection()
        let (answered, written) = try await Self.send(#"{"idempotencyId":"a"}"#, on: channel, connection)
        #expect(written.hasPrefix("POST /notifications/api/v1/future/orders HTTP/1.1\r\n"), "\(written)")
        #expect(written.contains("Host: platform.altinn.test:8080\r\n") && written.hasSuffix("\r\n\r\n{\"idempotencyId\":\"a\"}"), "\(written)")
        try await channel.writeInbound(ByteBuffer(string: "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n{\"id\":1}\n"))
        let answer = try await answered.get()
        #expect(answer.status == 201 && answer.headers.first(name: "Content-Type") == "application/json")
        #expect(try await Self.body(answer) == "{\"id\":1}\n")
        #expect(try await channel.eventLoop.submit { pool.take(Self.endpoint) === connection }.get(), "kept for the next call")

        // The next call on it; Altinn says it closes: not kept.
        let (second, _) = try await Self.send("{}", on: channel, connection)
        try await channel.writeInbound(ByteBuffer(string: "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"))
        let refused = try await second.get()
        let refusal = try await Self.body(refused)
        #expect(refused.status == 400 && refusal == "{}")
        #expect(try await channel.eventLoop.submit { pool.take(Self.endpoint) == nil }.get())
        #expect(connection.uses == 2)
    }

    @Test("no head within the timeout: the call fails as timed out at once, and the connection is closed")
    func headTimeout() async throws {
        let (channel, pool, connection) = try await Self.connection()
        let (answered, _) = try await Self.send("{}", on: channel, connection, timeout: .seconds(2))
        await channel.testingEventLoop.advanceTime(by: .seconds(1))
        #expect(channel.isActive, "still waiting for the head")
        await channel.testingEventLoop.advanceTime(by: .seconds(2))
        await #expect(throws: ForwardingConnection.Failure.self) { try await answered.get() }
        do {
            _ = try await answered.get()
        } catch ForwardingConnection.Failure.timedOut {
        } catch {
            Issue.record("not a timeout: \(error)")
        }
        #expect(try await channel.eventLoop.submit { pool.take(Self.endpoint) == nil }.get())
    }

    @Test("an answer broken off mid-body ends its body with an error, and the connection is not used again")
    func brokenOff() async throws {
        let (channel, pool, connection) = try await Self.connection()
        let (answered, _) = try await Self.send("{}", on: channel, connection)
        try await channel.writeInbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npart"))
        let answer = try await answered.get()
        try await channel.close()
        await #expect(throws: (any Error).self) { _ = try await Self.body(answer) }
        #expect(try await channel.eventLoop.submit { pool.take(Self.endpoint) == nil }.get())
    }

    @Test("the proxy's tunnel: CONNECT with the proxy URL's credentials; a refusal keeps its status and names the target; 200 leaves the pipeline as it was")
    func tunnel() async throws {
        let server = ProxySettings.Server(host: "proxy.test", port: 3128, username: "broker", password: "secret")
        let target = ForwardingEndpoint(secure: true, host: "platform.altinn.no", port: 443, proxied: true)
        for (answer, refused) in [("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", true), ("HTTP/1.1 200 Connection established\r\n\r\n", false)] {
            let channel = NIOAsyncTestingChannel()
            try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3128)).get()
            let opened = try await channel.eventLoop.submit { ProxyTunnel.open(on: channel, through: server, to: target, timeout: .seconds(5)) }.get()
            let request = String(buffer: try #require(try await channel.readOutbound(as: ByteBuffer.self)))
            #expect(request.hasPrefix("CONNECT platform.altinn.no:443 HTTP/1.1\r\nHost: platform.altinn.no:443\r\nProxy-Authorization: Basic "), "\(request)")
            try await channel.writeInbound(ByteBuffer(string: answer))
            if refused {
                do {
                    try await opened.get()
                    Issue.record("a 403 opened the tunnel")
                } catch let failure as ForwardingClient.Failure {
                    let words = UpstreamClient.failure(failure, timeout: .seconds(30), proxy: ProxySettings(server: server))
                    guard case .unreachable(let text) = words else { throw failure }
                    #expect(text.contains("the proxy refused the CONNECT to platform.altinn.no:443 (HTTP 403 Forbidden)"), "\(text)")
                    #expect(!text.contains("secret"))
                }
            } else {
                try await opened.get()
                #expect(try await channel.pipeline.handler(type: ProxyTunnel.self).map { _ in true }.recover { _ in false }.get() == false)
            }
        }
    }
}
