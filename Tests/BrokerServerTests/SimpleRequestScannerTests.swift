import NIOHTTP1
import Testing

@testable import BrokerServer

@Suite("The fast path's request scanner")
struct SimpleRequestScannerTests {
    static let scanner = SimpleRequestScanner(headerBytes: 16 * 1024, targetBytes: 4 * 1024)

    static func scan(_ text: String) -> SimpleRequestScan {
        Array(text.utf8).withUnsafeBytes { scanner.scan($0) }
    }

    static func simple(_ text: String) throws -> SimpleRequest {
        guard case .simple(let request) = scan(text) else {
            Issue.record("not taken by the fast path: \(text.debugDescription) -> \(scan(text))")
            throw CancellationError()
        }
        return request
    }

    @Test("a GET head: its target, its length, the first Accept")
    func simpleGet() throws {
        let head =
            "GET /v1/token/notifications?min_valid=60 HTTP/1.1\r\nHost: localhost\r\nAccept:  text/plain \r\nAccept: application/json\r\nUser-Agent: curl/7.88.1\r\n\r\n"
        let request = try Self.simple(head + "GET /next HTTP/1.1\r\n")
        #expect(request.target == "/v1/token/notifications?min_valid=60")
        #expect(request.length == head.utf8.count)
        #expect(request.accept == "text/plain ", "leading white space dropped, trailing kept, as NIO's parser reads it")
        #expect(request.keepAlive)
        #expect(try Self.simple("GET / HTTP/1.1\r\n\r\n").accept == nil)
    }

    @Test(
        "keep-alive as NIO's HTTPRequestHead.isKeepAlive decides it",
        arguments: [
            ("HTTP/1.1", nil, true), ("HTTP/1.1", "close", false), ("HTTP/1.1", "Keep-Alive, CLOSE", false), ("HTTP/1.1", "keep-alive", true),
            ("HTTP/1.0", nil, false), ("HTTP/1.0", "keep-alive", true), ("HTTP/1.0", " Keep-Alive ", true), ("HTTP/1.0", "keep-alive,close", false),
            ("HTTP/1.1", "TE", true),
        ] as [(String, String?, Bool)])
    func keepAlive(version: String, connection: String?, expected: Bool) throws {
        let head = "GET /healthz \(version)\r\nHost: x\r\n" + (connection.map { "Connection: \($0)\r\n" } ?? "") + "\r\n"
        #expect(try Self.simple(head).keepAlive == expected)
    }

    @Test(
        "an unfinished head waits for more, as long as nothing rules it out",
        arguments: [
            "", "G", "GET", "GET ", "GET /v1/token/x HTTP/1.1", "GET /v1/token/x HTTP/1.1\r", "GET /v1/token/x HTTP/1.1\r\nHost: x\r\n",
            "GET /v1/token/x HTTP/1.1\r\nHost: x\r\n\r",
        ])
    func incomplete(text: String) {
        #expect(Self.scan(text) == .incomplete)
    }

    @Test(
        "everything else is NIO's",
        arguments: [
            "POST /v1/token/x/refresh HTTP/1.1\r\n\r\n", "HEAD / HTTP/1.1\r\n\r\n", "get / HTTP/1.1\r\n\r\n", "GETX / HTTP/1.1\r\n\r\n",
            "\u{16}\u{03}\u{01}", "PRI * HTTP/2.0\r\n\r\n",
            "GET / HTTP/1.1\n\n", "GET / HTTP/1.1\r\nHost: x\n\r\n", "GET / HTTP/1.1\r\nHost: x\r\n\n",
            "GET / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "GET / HTTP/1.1\r\ncontent-length: 5\r\n\r\nhello",
            "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "GET / HTTP/1.1\r\nConnection: upgrade\r\n\r\n", "GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", "GET / HTTP/1.1\r\nHost : x\r\n\r\n", "GET / HTTP/1.1\r\n: x\r\n\r\n",
            "GET / HTTP/1.1\r\nNo colon\r\n\r\n", "GET / HTTP/1.1\r\nX: a\u{7F}b\r\n\r\n", "GET / HTTP/1.1\r\nX: a\u{01}b\r\n\r\n",
            "GET /a b HTTP/1.1\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET x HTTP/1.1\r\n\r\n", "GET /\u{e6} HTTP/1.1\r\n\r\n",
            "GET / HTTP/1.2\r\n\r\n", "GET / HTTP/2.0\r\n\r\n", "GET / http/1.1\r\n\r\n", "GET / HTTP/1.1 \r\n\r\n", "GET /\r\n\r\n",
            "GET HTTP/1.1\r\n\r\n",
        ])
    func other(text: String) {
        #expect(Self.scan(text) == .other, "\(text.debugDescription)")
    }

    static func gateway(_ text: String) throws -> GatewayRequestHead {
        guard case .gateway(let head) = scan(text) else {
            Issue.record("not a gateway call for the fast path: \(text.debugDescription) -> \(scan(text))")
            throw CancellationError()
        }
        return head
    }

    @Test("a gateway call: its method, target, every field as sent, keep-alive, the head's and the body's lengths")
    func gatewayCall() throws {
        let head =
            "POST /v1/api/notifications/notifications/api/v1/future/orders?x=1 HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            + "content-length: 11\r\nIdempotency-Key:  abc \r\nConnection: close\r\n\r\n"
        let call = try Self.gateway(head + "{\"order\":1}")
        #expect(call.method == .POST && call.target == "/v1/api/notifications/notifications/api/v1/future/orders?x=1")
        #expect(call.length == head.utf8.count && call.bodyLength == 11 && !call.keepAlive)
        #expect(call.headers.first(name: "Idempotency-Key") == "abc ", "leading white space dropped, trailing kept, as NIO's parser reads it")
        #expect(call.headers.count == 5 && call.headers["Content-Type"] == ["application/json"])
        for method in ["GET", "PUT", "PATCH", "DELETE"] {
            let other = try Self.gateway("\(method) /v1/api/p/x HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(other.method == HTTPMethod(rawValue: method) && other.bodyLength == 0 && other.keepAlive)
        }
        #expect(Self.scan("POST /v1/api/p/x HTTP/1.1\r\nContent-Length: 3\r\n") == .incomplete)
    }

    @Test(
        "a gateway call in any other shape is NIO's: another method, a chunked body, a length NIO would judge, Expect, Upgrade",
        arguments: [
            "HEAD /v1/api/p/x HTTP/1.1\r\n\r\n", "OPTIONS /v1/api/p/x HTTP/1.1\r\n\r\n", "POST /v1/token/x HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST /v1/api/p/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "POST /v1/api/p/x HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            "POST /v1/api/p/x HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\n", "POST /v1/api/p/x HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n",
            "POST /v1/api/p/x HTTP/1.1\r\nContent-Length: 1234567890\r\n\r\n", "POST /v1/api/p/x HTTP/1.1\r\nContent-Length:\r\n\r\n",
            "POST /v1/api/p/x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", "GET /v1/api/p/x HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
            "POST /v1/api/p/x HTTP/1.1\nContent-Length: 0\n\n", "POST /v1/a",
        ])
    func gatewayOther(text: String) {
        #expect(Self.scan(text) == .other, "\(text.debugDescription)")
    }

    @Test("the limits: heads, targets and field counts past them are NIO's to refuse")
    func limits() throws {
        let bigHead = "GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 16 * 1024) + "\r\n\r\n"
        #expect(Self.scan(bigHead) == .other)
        #expect(Self.scan(String(decoding: bigHead.utf8.prefix(16 * 1024 + 1), as: UTF8.self)) == .other, "an unfinished head already over the limit")
        #expect(Self.scan(String(decoding: bigHead.utf8.prefix(16 * 1024), as: UTF8.self)) == .incomplete)
        #expect(Self.scan("GET /" + String(repeating: "x", count: 4 * 1024) + " HTTP/1.1\r\n\r\n") == .other)
        _ = try Self.simple("GET /" + String(repeating: "x", count: 4 * 1024 - 1) + " HTTP/1.1\r\n\r\n")
        let fields = (0..<100).map { "X-\($0): v\r\n" }.joined()
        _ = try Self.simple("GET / HTTP/1.1\r\n" + fields + "\r\n")
        #expect(Self.scan("GET / HTTP/1.1\r\n" + fields + "X-101: v\r\n\r\n") == .other)
        #expect(Self.scan("GET / HTTP/1.1\r\n" + fields + "X-101: v\r\n") == .other, "unfinished, and already too many fields")
    }
}

@Suite("Accept: JSON or the bare token")
struct AcceptTests {
    @Test(
        "text/plain alone (any letter case) asks for the bare token; with application/json, or none, JSON",
        arguments: [
            ("text/plain", true), ("TEXT/Plain; charset=utf-8", true), ("text/html, text/plain;q=0.9", true),
            ("application/json", false), ("text/plain, Application/JSON", false), ("*/*", false), ("text/plai", false), (nil, false),
        ] as [(String?, Bool)])
    func plainText(accept: String?, expected: Bool) {
        let request = BrokerRequest(SimpleRequest(target: "/v1/token/x", keepAlive: true, accept: accept, length: 0))
        #expect(request.wantsPlainText == expected)
    }
}
