import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerCrypto
@testable import BrokerTokens
@testable import BrokerUpstream

@Suite("Upstream answers", .sharedKeys)
struct UpstreamAnswerTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    /// An unsigned-looking JWT with the given claims (the exchange's answer is not verified by
    /// the broker: Altinn's own APIs do that).
    static func jwt(_ claims: String) -> String {
        Base64.urlEncoded(Array(#"{"alg":"RS256","typ":"JWT"}"#.utf8)) + "." + Base64.urlEncoded(Array(claims.utf8)) + ".c2ln"
    }

    // MARK: - Maskinporten

    @Test("a token answer is read field by field")
    func maskinportenSuccess() throws {
        let body = #"{"access_token":"abc.def.ghi","token_type":"Bearer","expires_in":119,"scope":"a:b c:d"}"#
        let token = try UpstreamAnswers.maskinporten(status: 200, headers: [], body: Array(body.utf8)).get()
        #expect(token.accessToken == "abc.def.ghi")
        #expect(token.expiresIn == 119)
        #expect(token.scope == "a:b c:d")
    }

    @Test(
        "a 200 without the protocol's fields is malformed",
        arguments: [
            "not json", "[]", #"{"token_type":"Bearer","expires_in":120}"#, #"{"access_token":"x","expires_in":120}"#,
            #"{"access_token":"x","token_type":"Bearer"}"#, #"{"access_token":"x","token_type":"Bearer","expires_in":-5}"#,
            #"{"access_token":"x","token_type":"Bearer","expires_in":"120"}"#, #"{"access_token":"","token_type":"Bearer","expires_in":120}"#,
        ])
    func maskinportenMalformed(_ body: String) {
        let result = UpstreamAnswers.maskinporten(status: 200, headers: [], body: Array(body.utf8))
        guard case .failure(let error) = result else {
            Issue.record("accepted \(body)")
            return
        }
        #expect(error.kind == .malformed)
        #expect(error.endpoint == .maskinporten)
    }

    @Test("Maskinporten's error answer is kept: error, description with its MP code, error_uri")
    func maskinportenError() {
        let body =
            #"{"error":"invalid_grant","error_description":"Invalid assertion. Client authentication failed. Invalid JWT claim aud (MP-110)","error_uri":"https://docs.digdir.no/x"}"#
        guard case .failure(let error) = UpstreamAnswers.maskinporten(status: 400, headers: [], body: Array(body.utf8)) else {
            Issue.record("accepted an error")
            return
        }
        #expect(error.kind == .rejected)
        #expect(
            error.upstream
                == UpstreamAnswer(
                    status: 400, error: "invalid_grant", errorDescription: "Invalid assertion. Client authentication failed. Invalid JWT claim aud (MP-110)",
                    errorURI: "https://docs.digdir.no/x"))
        #expect(error.description.contains("MP-110"))
    }

    @Test(
        "statuses are classified: 4xx rejected, 408/429/5xx unavailable, others malformed",
        arguments: [
            (400, TokenError.Kind.rejected), (401, .rejected), (403, .rejected), (404, .rejected),
            (408, .unavailable), (429, .unavailable), (500, .unavailable), (502, .unavailable), (503, .unavailable), (504, .unavailable),
            (301, .malformed), (204, .malformed),
        ])
    func classification(_ status: Int, _ kind: TokenError.Kind) {
        guard case .failure(let error) = UpstreamAnswers.maskinporten(status: status, headers: [], body: []) else {
            Issue.record("accepted \(status)")
            return
        }
        #expect(error.kind == kind)
    }

    @Test("Retry-After as seconds or as an HTTP date")
    func retryAfter() {
        let seconds = UpstreamAnswers.maskinporten(status: 429, headers: [("Retry-After", "30")], body: [])
        guard case .failure(let error) = seconds else {
            Issue.record("accepted")
            return
        }
        #expect(error.retryAfter == .seconds(30))
        let date = Date(timeIntervalSince1970: 1_800_000_045)
        let formatted = "Fri, 15 Jan 2027 08:00:45 GMT"
        #expect(UpstreamAnswers.httpDate(formatted) == date)
        #expect(UpstreamAnswers.retryAfterDuration(formatted, now: Self.now) == .seconds(45))
        #expect(UpstreamAnswers.retryAfterDuration("soon", now: Self.now) == nil)
        #expect(UpstreamAnswers.httpDate("Sun, 06 Nov 1994 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
        #expect(UpstreamAnswers.httpDate("Thu, 29 Feb 2024 23:59:59 GMT") == Date(timeIntervalSince1970: 1_709_251_199))
        #expect(UpstreamAnswers.httpDate("Thu, 01 Jan 1970 00:00:00 GMT") == Date(timeIntervalSince1970: 0))
        #expect(UpstreamAnswers.httpDate("Sun, 06 Nov 1994 08:49:37 CET") == nil)
        #expect(UpstreamAnswers.httpDate("Sun, 06 Foo 1994 08:49:37 GMT") == nil)
        #expect(UpstreamAnswers.retryAfterDuration("-1", now: Self.now) == nil)
    }

    @Test("upstream text is cut short and cleaned of control characters")
    func cleaned() {
        let long = String(repeating: "x", count: 1000) + "\u{1b}[31m"
        guard case .failure(let error) = UpstreamAnswers.maskinporten(status: 500, headers: [], body: Array(long.utf8)) else {
            Issue.record("accepted")
            return
        }
        let text = error.upstream?.errorDescription ?? ""
        #expect(text.count <= 301)
        #expect(!text.contains("\u{1b}"))
    }

    // MARK: - Altinn

    @Test("the Altinn token arrives bare or as a JSON string, and lives by its exp", arguments: [false, true])
    func altinnSuccess(quoted: Bool) throws {
        let jwt = Self.jwt(#"{"exp":1800001800,"urn:altinn:org":"ttd"}"#)
        let body = quoted ? "\"\(jwt)\"" : jwt + "\n"
        let token = try UpstreamAnswers.altinn(status: 200, headers: [], body: Array(body.utf8), now: Self.now).get()
        #expect(token.value == jwt)
        #expect(token.expiresAt == Date(timeIntervalSince1970: 1_800_001_800))
    }

    @Test(
        "an Altinn answer that is not a usable JWT is malformed",
        arguments: [
            ("not a JWT", "<html>oops</html>"),
            ("a JSON object", #"{"token":"x"}"#),
            ("a broken JSON string", "\"abc"),
            ("no exp", jwt(#"{"iss":"x"}"#)),
            ("already expired", jwt(#"{"exp":1799999990}"#)),
            ("payload not JSON", Base64.urlEncoded(Array("{}".utf8)) + "." + Base64.urlEncoded(Array("nope".utf8)) + ".sig"),
        ])
    func altinnMalformed(_ name: String, _ body: String) {
        guard case .failure(let error) = UpstreamAnswers.altinn(status: 200, headers: [], body: Array(body.utf8), now: Self.now) else {
            Issue.record("accepted \(name)")
            return
        }
        #expect(error.kind == .malformed, "\(name)")
        #expect(error.endpoint == .altinn)
    }

    @Test("Altinn's problem details are kept")
    func altinnProblem() {
        let body = #"{"type":"https://tools.ietf.org/html/rfc9110#section-15.5.2","title":"Unauthorized","status":401,"detail":"token expired"}"#
        guard case .failure(let error) = UpstreamAnswers.altinn(status: 401, headers: [], body: Array(body.utf8), now: Self.now) else {
            Issue.record("accepted")
            return
        }
        #expect(error.kind == .rejected)
        #expect(error.upstream == UpstreamAnswer(status: 401, error: "Unauthorized", errorDescription: "token expired"))
    }
}

@Suite("Retry policy", .sharedKeys)
struct RetryPolicyTests {
    let policy = RetryPolicy()

    @Test("outages back off exponentially from 1 s to 60 s, jittered between half and all")
    func exponential() {
        let outage = TokenError(.unavailable, "down")
        let top = (1...8).map { policy.delay(after: outage, failures: $0, usable: nil, random: 0.999_999) }
        #expect(top.map { Int(($0 / .milliseconds(1)).rounded()) } == [1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000])
        let bottom = policy.delay(after: outage, failures: 3, usable: nil, random: 0)
        #expect(bottom == .seconds(2))
    }

    @Test("refusals back off from 15 s to 5 minutes")
    func rejected() {
        let refusal = TokenError(.rejected, "bad key")
        #expect(policy.delay(after: refusal, failures: 1, usable: nil, random: 0.999_999) > .seconds(14.9))
        #expect(policy.delay(after: refusal, failures: 20, usable: nil, random: 0.999_999) <= .seconds(300))
    }

    @Test("a held token shortens the wait to half its usable time; Retry-After lengthens it")
    func bounds() {
        let outage = TokenError(.unavailable, "down")
        #expect(policy.delay(after: outage, failures: 7, usable: .seconds(20), random: 0.5) == .seconds(10))
        var limited = TokenError(.unavailable, "slow down")
        limited.retryAfter = .seconds(120)
        #expect(policy.delay(after: limited, failures: 1, usable: .seconds(20), random: 0.5) == .seconds(120))
        limited.retryAfter = .seconds(7200)
        #expect(policy.delay(after: limited, failures: 1, usable: nil, random: 0.5) == .seconds(600))
    }
}
