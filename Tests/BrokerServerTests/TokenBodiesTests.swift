import Foundation
import NIOCore
import Testing

@testable import BrokerServer
@testable import BrokerTokens

@Suite("Token answers built once per token")
struct TokenBodiesTests {
    static let token = IssuedToken(
        value: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", kind: .altinn, scope: "altinn:serviceowner/notifications.create \"odd\" \\ \u{01}\n\u{00e6}",
        expiresAt: Date(timeIntervalSince1970: 1_800_000_000), fingerprint: "0123456789abcdef"
    )

    @Test("byte for byte what JSONEncoder writes, escapes included", arguments: [0, 7, 1799, 86_400])
    func sameAsEncoder(expiresIn: Int) throws {
        let built = TokenBodies.make(Self.token, profile: "notifications").render(expiresIn: expiresIn)
        let encoded =
            try JSONCoding.encoder.encode(
                TokenBody(
                    accessToken: Self.token.value, tokenType: "Bearer", expiresIn: expiresIn, expiresAt: JSONCoding.rfc3339(Self.token.expiresAt),
                    scope: Self.token.scope, profile: "notifications", kind: "altinn"
                )) + Data("\n".utf8)
        #expect(Array(built.readableBytesView) == Array(encoded), "\(String(buffer: built))")
    }

    @Test("expires_at is RFC 3339 in whole seconds, rounded down", arguments: [0, 1_764_032_489, 4_102_444_800])
    func expiresAt(seconds: Int) {
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        #expect(JSONCoding.rfc3339(date.addingTimeInterval(0.999)) == date.formatted(.iso8601))
    }
}
