import Testing

@testable import BrokerClient

/// `api`'s command line, as both executables read it.
@Suite("api command line")
struct ApiInvocationTests {
    @Test("a path alone is GET; --data makes it POST; a method before the path is taken as given")
    func methods() throws {
        #expect(
            ClientInvocation(["api", "notifications", "/notifications/api/v1/orders/1"])
                == .api(.init(profile: "notifications", method: nil, path: "/notifications/api/v1/orders/1")))
        guard case .api(let post)? = ClientInvocation(["api", "n", "/notifications/api/v1/future/orders", "--data", "@order.json"]) else {
            Issue.record("not an api call")
            return
        }
        #expect(post.method == "POST")
        #expect(post.data == .file("order.json"))
        guard case .api(let delete)? = ClientInvocation(["api", "n", "DELETE", "/x/", "--data=@-", "--include"]) else {
            Issue.record("not an api call")
            return
        }
        #expect(delete.method == "DELETE" && delete.data == .standardInput && delete.include)
    }

    @Test("headers in order, a JSON content type for a body unless given, and the delegation as Broker-* headers")
    func headers() throws {
        guard
            case .api(let request)? = ClientInvocation([
                "api", "vendor", "/notifications/api/v1/future/orders", "--data", "{}", "--header", "Idempotency-Key: 7", "--header",
                "Accept: text/plain", "--system-user-org", "991825827", "--consumer-org", "910000004",
            ])
        else {
            Issue.record("not an api call")
            return
        }
        #expect(request.target == "/v1/api/vendor/notifications/api/v1/future/orders")
        #expect(
            request.requestHeaders.map { "\($0.0): \($0.1)" } == [
                "Idempotency-Key: 7", "Accept: text/plain", "Content-Type: application/json", "Broker-System-User-Org: 991825827",
                "Broker-Consumer-Org: 910000004",
            ])
    }

    @Test(
        "a call that cannot be made as given is a usage error (exit 2), said on one line with the usage",
        arguments: [
            ["api"], ["api", "n"], ["api", "n", "get", "/x"], ["api", "n", "x"], ["api", "n", "/x", "--header", "nocolon"], ["api", "n", "/x", "--data"],
            ["api", "n", "/x", "--bogus"], ["api", "n", "GET", "/x", "extra"],
        ])
    func usage(_ arguments: [String]) {
        guard case .usage(let message)? = ClientInvocation(arguments) else {
            Issue.record("\(arguments) was taken")
            return
        }
        #expect(message.hasPrefix("maskinporten-broker api: "))
        #expect(message.contains("usage: maskinporten-broker api PROFILE"))
    }

    @Test("--help goes to maskinporten-brokerd's parser")
    func help() {
        #expect(ClientInvocation(["api", "--help"]) == nil)
        #expect(ClientInvocation(["api", "n", "/x", "-h"]) == nil)
    }

    @Test("a chunked answer is read whole")
    func chunked() throws {
        let answer = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n".utf8)
        #expect(try SocketClient.parse(answer).text == "hello world")
        #expect(throws: SocketClient.Failure.self) { try SocketClient.parse(Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel".utf8)) }
    }
}
