import BrokerConfig
import BrokerTokens
import FoundationEssentials
import NIOCore

/// The JSON answer of `GET /v1/token/{profile}`, built once per token rather than once per
/// request: everything but `expires_in` is fixed while a token is held, so the body is kept as the
/// bytes before that number and the bytes after it. Keys in sorted order, as `JSONCoding` writes
/// every other answer.
enum TokenBodies {
    /// One token's answer, split around `expires_in`.
    struct Body: Sendable {
        var token: String
        var expiresAt: String
        var head: [UInt8]
        var tail: [UInt8]

        /// The whole body with `expiresIn`.
        func render(expiresIn: Int) -> ByteBuffer {
            var buffer = ByteBuffer()
            buffer.reserveCapacity(head.count + tail.count + 20)
            buffer.writeBytes(head)
            buffer.writeString(String(expiresIn))
            buffer.writeBytes(tail)
            return buffer
        }
    }

    /// The answer for `token` from `cache`, made on the first request after the token changed
    /// and kept by the cache with its token.
    static func body(for token: IssuedToken, from cache: TokenCache) -> Body {
        cache.prepared(for: token) { make($0, profile: cache.profile.name) }
    }

    static func make(_ token: IssuedToken, profile: String) -> Body {
        let expiresAt = JSONCoding.rfc3339(token.expiresAt)
        let head = "{\"access_token\":" + JSONText.quoted(token.value) + ",\"expires_at\":" + JSONText.quoted(expiresAt) + ",\"expires_in\":"
        let tail =
            ",\"kind\":" + JSONText.quoted(token.kind.rawValue) + ",\"profile\":" + JSONText.quoted(profile)
            + ",\"scope\":" + JSONText.quoted(token.scope) + ",\"token_type\":\"Bearer\"}\n"
        return Body(token: token.value, expiresAt: expiresAt, head: Array(head.utf8), tail: Array(tail.utf8))
    }
}

/// JSON text by hand, for the few answers on the hot path.
enum JSONText {
    /// `text` as a JSON string, escaped as `JSONEncoder` does with `.withoutEscapingSlashes`.
    static func quoted(_ text: String) -> String {
        var result = "\""
        result.reserveCapacity(text.utf8.count + 2)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            case "\u{08}": result += "\\b"
            case "\u{0C}": result += "\\f"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result + "\""
    }
}
