import NIOHTTP1
import Testing

@testable import BrokerServer

@Suite("The gateway's path and headers")
struct GatewayPathTests {
    static let prefixes = ["/notifications/api/v1/"]

    @Test(
        "plain paths under a prefix pass as written",
        arguments: [
            "/notifications/api/v1/future/orders", "/notifications/api/v1/orders/3fa85f64-5717-4562-b3fc-2c963f66afa6/status", "/notifications/api/v1/a%20b",
        ])
    func passes(_ path: String) {
        #expect(GatewayPath.judge(path[...], prefixes: Self.prefixes) == .success(path[...]))
    }

    @Test(
        "anything read two ways is refused before a prefix is looked at",
        arguments: [
            "/notifications/api/v1/../../authentication/api/v1/exchange/maskinporten", "/notifications/api/v1/./orders", "/notifications/api/v1//orders",
            "/notifications/api/v1/%2e%2e/%2e%2e/authentication", "/notifications/api/v1/..%2F..%2Fauthentication", "/notifications/api/v1/%2F",
            "/notifications/api/v1/%5C..", "/notifications/api/v1/%252e%252e/", "/notifications/api/v1/%00", "/notifications/api/v1/%zz",
            "/notifications/api/v1/%2", "/notifications/api/v1\\..\\x", "/notifications/api/v1/..", "notifications/api/v1/x", "/", "",
            "/notifications/api/v1/a b", "/notifications/api/v1/\u{e6}",
        ])
    func malformed(_ path: String) {
        guard case .failure(.malformed) = GatewayPath.judge(path[...], prefixes: Self.prefixes) else {
            Issue.record("\(path) was not refused as malformed")
            return
        }
    }

    @Test(
        "plain paths outside the prefixes are not allowed",
        arguments: ["/authentication/api/v1/exchange/maskinporten", "/notifications/api/v10/orders", "/notifications/api/v1", "/storage/api/v1/x"])
    func notAllowed(_ path: String) {
        #expect(GatewayPath.judge(path[...], prefixes: Self.prefixes) == .failure(.notAllowed("/notifications/api/v1/")))
    }

    @Test("the caller's credentials, hop-by-hop, proxy and Broker-* headers stay behind; the rest goes as it came")
    func outbound() {
        let headers: HTTPHeaders = [
            "Content-Type": "application/json", "Accept": "application/json", "Idempotency-Key": "k1", "Authorization": "Bearer mine",
            "authorization": "Basic x", "Cookie": "a=b", "PlatformAccessToken": "p", "Connection": "keep-alive, X-Hop", "X-Hop": "1",
            "Keep-Alive": "timeout=5", "Transfer-Encoding": "chunked", "Proxy-Authorization": "Basic y", "Proxy-Connection": "keep-alive",
            "Host": "localhost", "Content-Length": "2", "Expect": "100-continue", "Broker-System-User-Org": "991825827", "TE": "trailers",
            "Upgrade": "h2c",
        ]
        #expect(
            GatewayHeaders.outbound(headers).map { "\($0.name): \($0.value)" } == [
                "Content-Type: application/json", "Accept: application/json", "Idempotency-Key: k1",
            ])
    }

    @Test("Altinn's headers come back but Set-Cookie and the hop-by-hop ones")
    func inbound() {
        let headers: HTTPHeaders = [
            "Content-Type": "application/problem+json", "Location": "https://x/orders/1", "Set-Cookie": "s=1", "Connection": "close",
            "Transfer-Encoding": "chunked", "Content-Length": "10",
        ]
        #expect(
            GatewayHeaders.inbound(headers).map { "\($0.name): \($0.value)" } == [
                "Content-Type: application/problem+json", "Location: https://x/orders/1", "Content-Length: 10",
            ])
    }

    @Test("the delegation headers, under the token route's parameter names")
    func delegation() {
        let headers: HTTPHeaders = ["Broker-System-User-Org": "991825827", "broker-consumer-org": "910000004"]
        #expect(GatewayHeaders.delegationChoice(headers) == ["system_user_org": "991825827", "consumer_org": "910000004"])
    }
}
