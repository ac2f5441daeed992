import Foundation
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import BrokerPOSIX
@testable import BrokerServer

/// The socket's pipeline in process, on `NIOAsyncTestingChannel`: the handlers every connection
/// gets, the router and a token broker against an emulator, no process and no socket.
@Suite("The server's pipeline, in process", .serialized, .timeLimit(.minutes(2)))
struct ServerPipelineTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var request: String
        var status: Int
        var error: String?
        var peer: PeerCredentials = ServerFixture.me
        var testDescription: String { String(request.prefix(while: { $0 != "\r" })) + " -> \(status)" }
    }

    @Test(
        "every route's answer and every error code",
        arguments: [
            Case(request: get("/healthz"), status: 200),
            Case(request: get("/metrics"), status: 200),
            Case(request: get("/v1/profiles"), status: 200),
            Case(request: get("/v1/token/demo"), status: 200),
            Case(request: get("/nope"), status: 404, error: "not_found"),
            Case(request: get("/healthz/"), status: 404, error: "not_found"),
            Case(request: get("/v1/token/nope"), status: 404, error: "unknown_profile"),
            Case(request: get("/v1/token/"), status: 404, error: "unknown_profile"),
            Case(request: get("/v1/token/demo/other"), status: 404, error: "not_found"),
            Case(request: get("/v1/token/demo", "Accept: application/json\r\n"), status: 200),
            Case(request: get("/v1/token/demo?min_valid=abc"), status: 400, error: "invalid_request"),
            Case(request: get("/v1/token/demo?min_valid=99999"), status: 400, error: "invalid_request"),
            Case(request: get("/v1/token/demo", ""), status: 403, error: "access_denied", peer: ServerFixture.stranger),
            Case(request: "POST /v1/token/demo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", status: 405, error: "invalid_request"),
            Case(request: get("/v1/token/demo/refresh"), status: 405, error: "invalid_request"),
            Case(request: get("/v1/platform-access-token/nope"), status: 404, error: "unknown_profile"),
            Case(request: "POST /v1/exchange/id-porten HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc", status: 404, error: "unknown_profile"),
            Case(request: get("/v1/exchange/id-porten"), status: 405, error: "invalid_request"),
        ])
    func routes(_ test: Case) async throws {
        let connection = try await TestConnection.open(peer: test.peer)
        try await connection.send(test.request)
        let answer = try await connection.answer()
        #expect(answer.status == test.status, "\(answer)")
        if let error = test.error {
            let body = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
            #expect(body["error"] as? String == error, "\(answer)")
            #expect(body["error_description"] is String)
            #expect(answer.header("Cache-Control") == "no-store")
        }
        if test.status == 405 {
            #expect(answer.header("Allow") != nil, "405 names the method to use")
        }
        await connection.close()
    }

    @Test("a token answer: JSON with the token, no-store; Accept: text/plain gets the bare token")
    func token() async throws {
        let connection = try await TestConnection.open()
        try await connection.send(get("/v1/token/demo") + get("/v1/token/demo", "Accept: text/plain\r\n"))
        let answers = try await connection.answers(2)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(answers[0].body.utf8)) as? [String: Any])
        let token = try #require(body["access_token"] as? String)
        #expect(body["token_type"] as? String == "Bearer")
        #expect(body["profile"] as? String == "demo")
        #expect(body["kind"] as? String == "altinn")
        #expect(answers[0].header("Content-Type") == "application/json")
        #expect(answers[0].header("Cache-Control") == "no-store")
        #expect(answers[1].body == token)
        #expect(answers[1].header("Cache-Control") == "no-store")
        await connection.close()
    }

    @Test("a forced refresh is limited to one per profile per 10 s: 429 with Retry-After")
    func refreshRate() async throws {
        let connection = try await TestConnection.open()
        let refresh = "POST /v1/token/demo/refresh HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        try await connection.send(refresh)
        let first = try await connection.answer()
        #expect(first.status == 200 || first.status == 429, "\(first)")
        try await connection.send(refresh)
        let second = try await connection.answer()
        #expect(second.status == 429, "\(second)")
        #expect(second.body.contains("\"refresh_rate_limited\""))
        #expect(Int(second.header("Retry-After") ?? "") ?? 0 >= 1)
        await connection.close()
    }

    @Test("a caller that may use a profile sees its keys: kid, size, that it signs, where it lives, what Maskinporten said; never key material")
    func profilesShowKeys() async throws {
        let connection = try await TestConnection.open()
        try await connection.send(get("/v1/token/demo") + get("/v1/profiles"))
        let answers = try await connection.answers(2)
        #expect(answers.map(\.status) == [200, 200])
        let body = try #require(try JSONSerialization.jsonObject(with: Data(answers[1].body.utf8)) as? [String: Any])
        let demo = try #require((body["profiles"] as? [[String: Any]])?.first { $0["profile"] as? String == "demo" })
        let keys = try #require(demo["keys"] as? [[String: Any]])
        #expect(keys.count == 1)
        #expect((keys[0]["kid"] as? String)?.hasPrefix("demo-") == true)
        #expect(keys[0]["bits"] as? Int == 2048)
        #expect(keys[0]["signs"] as? Bool == true)
        #expect(keys[0]["maskinporten"] as? String == "accepted")
        #expect(keys[0]["age_days"] as? Int == 0, "the demo key records when it was made")
        #expect(keys[0]["location"] as? String == "memory")
        #expect(Set(keys[0].keys) == ["kid", "bits", "signs", "maskinporten", "made_at", "age_days", "location"])
        // The same in the metrics: which key signs, and its age.
        try await connection.send(get("/metrics"))
        let metrics = try await connection.answer().body
        let kid = try #require(keys[0]["kid"] as? String)
        #expect(metrics.contains("maskinporten_broker_key_signing{profile=\"demo\",kid=\"\(kid)\"} 1"), "\(metrics)")
        #expect(metrics.contains("maskinporten_broker_key_age_days{profile=\"demo\",kid=\"\(kid)\"} 0"), "\(metrics)")
        await connection.close()
    }

    @Test("every metric family /metrics shows is named in MetricName, and docs/metrics.md lists exactly those")
    func metricNames() async throws {
        let connection = try await TestConnection.open()
        try await connection.send(get("/metrics"))
        let metrics = try await connection.answer().body
        await connection.close()
        let shown = Set(
            metrics.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { String($0.split(separator: " ")[2]) })
        #expect(shown.isSubset(of: Set(MetricName.all)), "not in MetricName: \(shown.subtracting(MetricName.all).sorted())")
        #expect(shown.contains(MetricName.profileState) && shown.contains(MetricName.requests), "\(shown.sorted())")
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let document = try String(contentsOf: repository.appendingPathComponent("docs/metrics.md"), encoding: .utf8)
        let listed = Set(
            document.split(separator: "\n").filter { $0.hasPrefix("| `maskinporten_broker_") }.map { $0.split(separator: "`")[1] }.map(String.init))
        #expect(listed == Set(MetricName.all), "docs/metrics.md vs MetricName: \(listed.symmetricDifference(MetricName.all).sorted())")
    }

    @Test("a caller outside every allow list sees no profiles")
    func profilesForStranger() async throws {
        let connection = try await TestConnection.open(peer: ServerFixture.stranger)
        try await connection.send(get("/v1/profiles"))
        #expect(try await connection.answer().body == "{\"profiles\":[]}\n")
        await connection.close()
    }

    // MARK: - Keep-alive, pipelining, closing

    @Test("pipelined requests on one connection are answered in order, and it stays open")
    func pipelining() async throws {
        let connection = try await TestConnection.open()
        try await connection.send(get("/healthz") + get("/v1/token/nope") + get("/healthz"))
        let answers = try await connection.answers(3)
        #expect(answers.map(\.status) == [200, 404, 200])
        #expect(answers.allSatisfy { $0.header("Connection") == "keep-alive" })
        #expect(connection.channel.isActive)
        await connection.close()
    }

    @Test("Connection: close is answered, then the connection is closed")
    func connectionClose() async throws {
        let connection = try await TestConnection.open()
        try await connection.send(get("/healthz", "Connection: close\r\n"))
        let answer = try await connection.answer()
        #expect(answer.status == 200)
        #expect(answer.header("Connection") == "close")
        #expect(await connection.closes())
    }

    @Test("a request split across reads is answered once it is whole")
    func split() async throws {
        let connection = try await TestConnection.open()
        let request = get("/healthz")
        try await connection.send(String(request.prefix(9)))
        try await connection.send(String(request.dropFirst(9)))
        #expect(try await connection.answer().status == 200)
        await connection.close()
    }

    // MARK: - Limits

    @Test("limits: header, body, target; Content-Length with Transfer-Encoding")
    func limits() async throws {
        let cases: [(String, Int)] = [
            (get("/healthz", "X-Big: \(String(repeating: "a", count: 17 * 1024))\r\n"), 431),
            ("POST /v1/exchange/id-porten HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n" + String(repeating: "a", count: 70000), 413),
            (get("/" + String(repeating: "a", count: 5 * 1024)), 414),
            ("POST /v1/exchange/id-porten HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ]
        for (request, status) in cases {
            let connection = try await TestConnection.open()
            try await connection.send(request)
            let answer = try await connection.answer()
            #expect(answer.status == status, "\(request.prefix(60)): \(answer)")
            #expect(await connection.closes(), "a refused request ends its connection")
        }
    }

    @Test("a connection whose request head does not come within the head timeout is closed")
    func headTimeout() async throws {
        var limits = ServerLimits()
        limits.headTimeout = .seconds(10)
        let connection = try await TestConnection.open(limits: limits)
        try await connection.send("GET /heal")
        await connection.channel.testingEventLoop.advanceTime(by: .seconds(9))
        #expect(connection.channel.isActive)
        await connection.channel.testingEventLoop.advanceTime(by: .seconds(2))
        #expect(await connection.closes())

        // Kept alive between requests, the same limit holds for the next head.
        let kept = try await TestConnection.open(limits: limits)
        try await kept.send(get("/healthz"))
        #expect(try await kept.answer().status == 200)
        await kept.channel.testingEventLoop.advanceTime(by: .seconds(11))
        #expect(await kept.closes())
    }

    // MARK: - The fast path's hand-over

    @Test("a connection handed over by the fast path: its unwritten answers first, then its unanswered input is served")
    func handOver() async throws {
        var pending: [UInt8] = []
        BrokerResponse.text(.ok, "ok\n").append(keepAlive: true, to: &pending)
        let connection = try await TestConnection.open(handOver: (input: Array(get("/v1/token/nope").utf8), output: pending, close: false))
        let answers = try await connection.answers(2)
        #expect(answers[0].status == 200 && answers[0].body == "ok\n", "the fast path's answer, first")
        #expect(answers[1].status == 404 && answers[1].body.contains("unknown_profile"), "then NIO's")
        await connection.close()
    }

    @Test("a hand-over whose last answer said Connection: close writes it and closes")
    func handOverClosing() async throws {
        var pending: [UInt8] = []
        BrokerResponse.text(.ok, "ok\n").append(keepAlive: false, to: &pending)
        let connection = try await TestConnection.open(handOver: (input: Array(get("/healthz").utf8), output: pending, close: true))
        let answer = try await connection.answer()
        #expect(answer.header("Connection") == "close")
        #expect(await connection.closes())
    }

    @Test("the fast path's serialiser writes byte for byte what NIO's encoder writes")
    func oneWireForm() async throws {
        let connection = try await TestConnection.open()
        try await connection.send(get("/v1/token/nope"))
        var raw: [UInt8] = []
        while TestConnection.parse(raw, count: 1) == nil {
            if let buffer = try await connection.channel.readOutbound(as: ByteBuffer.self) {
                raw.append(contentsOf: buffer.readableBytesView)
            } else {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        var ours: [UInt8] = []
        BrokerResponse.error(.notFound, "unknown_profile", "no profile named \"nope\"").append(keepAlive: true, to: &ours)
        #expect(String(decoding: raw, as: UTF8.self) == String(decoding: ours, as: UTF8.self))
        await connection.close()
    }
}
