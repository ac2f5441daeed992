import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials

/// A Maskinporten access token answer.
package struct MaskinportenToken: Sendable {
    /// The access token.
    package var accessToken: String
    /// `Bearer`.
    package var tokenType: String
    /// Lifetime in seconds.
    package var expiresIn: Int
    /// The scopes granted.
    package var scope: String
}

/// An Altinn token and its expiry, read from its own `exp`.
package struct AltinnToken: Sendable {
    /// The token.
    package var value: String
    /// Its `exp`.
    package var expiresAt: Date
}

/// Reads upstream answers, separately from the HTTP that carries them so each rule can be tested
/// on its own.
package enum UpstreamAnswers {
    /// Interprets an answer from Maskinporten's token endpoint.
    package static func maskinporten(status: Int, headers: [(String, String)], body: [UInt8], now: Date = Date()) -> Result<MaskinportenToken, TokenError> {
        guard status == 200 else { return .failure(failure(.maskinporten, status: status, headers: headers, body: body, now: now)) }
        guard let object = jsonObject(body) else {
            return .failure(TokenError(.malformed, endpoint: .maskinporten, "Maskinporten answered 200 with a body that is not a JSON object"))
        }
        guard let token = object["access_token"]?.string, !token.isEmpty else {
            return .failure(TokenError(.malformed, endpoint: .maskinporten, "Maskinporten's answer has no access_token"))
        }
        guard let type = object["token_type"]?.string, type.lowercased() == "bearer" else {
            return .failure(TokenError(.malformed, endpoint: .maskinporten, "Maskinporten's answer has no token_type Bearer"))
        }
        guard let expiresIn = integer(object["expires_in"]), expiresIn > 0 else {
            return .failure(TokenError(.malformed, endpoint: .maskinporten, "Maskinporten's answer has no positive expires_in"))
        }
        return .success(MaskinportenToken(accessToken: token, tokenType: type, expiresIn: expiresIn, scope: object["scope"]?.string ?? ""))
    }

    /// Interprets an answer from Altinn's exchange: the token as a bare JWT or a JSON string,
    /// its lifetime from its own `exp`.
    package static func altinn(status: Int, headers: [(String, String)], body: [UInt8], now: Date = Date()) -> Result<AltinnToken, TokenError> {
        guard status == 200 else { return .failure(failure(.altinn, status: status, headers: headers, body: body, now: now)) }
        var text = String(decoding: body, as: UTF8.self).trimmed()
        if text.hasPrefix("\"") {
            guard let unquoted = try? JSONDecoder().decode(String.self, from: Data(text.utf8)) else {
                return .failure(TokenError(.malformed, endpoint: .altinn, "Altinn answered with a JSON string that does not parse"))
            }
            text = unquoted
        }
        guard let parts = try? JWS.split(text),
            jsonObject(parts.header) != nil,
            let claims = jsonObject(parts.payload)
        else {
            return .failure(TokenError(.malformed, endpoint: .altinn, "Altinn's exchange answered with something that is not a JWT"))
        }
        guard let exp = number(claims["exp"]) else {
            return .failure(TokenError(.malformed, endpoint: .altinn, "the Altinn token has no exp claim"))
        }
        let expiresAt = Date(timeIntervalSince1970: exp)
        guard expiresAt > now else {
            return .failure(
                TokenError(
                    .malformed, endpoint: .altinn,
                    "the Altinn token had already expired when it arrived (exp \(Int(exp)), \(Int(now.timeIntervalSince1970 - exp)) s ago)"))
        }
        return .success(AltinnToken(value: text, expiresAt: expiresAt))
    }

    // MARK: - Failures

    /// The error for a non-200 answer: rejected for 4xx (but 408 and 429), unavailable for 5xx,
    /// 408 and 429 (with `Retry-After`), malformed for anything else.
    static func failure(_ endpoint: UpstreamEndpoint, status: Int, headers: [(String, String)], body: [UInt8], now: Date) -> TokenError {
        let answer = upstreamAnswer(status: status, body: body)
        let name = endpoint.displayName
        switch status {
        case 408, 429, 500...599:
            let retryAfter = headers.first { $0.0.lowercased() == "retry-after" }.flatMap { retryAfterDuration($0.1, now: now) }
            return TokenError(.unavailable, endpoint: endpoint, "\(name) is unavailable (HTTP \(status))", upstream: answer, retryAfter: retryAfter)
        case 400...499:
            return TokenError(.rejected, endpoint: endpoint, "\(name) refused the request (HTTP \(status))", upstream: answer)
        default:
            return TokenError(.malformed, endpoint: endpoint, "\(name) answered with unexpected HTTP status \(status)", upstream: answer)
        }
    }

    /// OAuth2 (`error`, `error_description`, `error_uri`) or problem-details (`title`, `detail`)
    /// fields, or the start of a text body.
    static func upstreamAnswer(status: Int, body: [UInt8]) -> UpstreamAnswer {
        if let object = jsonObject(body) {
            return UpstreamAnswer(
                status: status,
                error: object["error"]?.string ?? object["title"]?.string,
                errorDescription: object["error_description"]?.string ?? object["detail"]?.string,
                errorURI: object["error_uri"]?.string
            )
        }
        let text = String(decoding: body.prefix(512), as: UTF8.self).trimmed()
        return UpstreamAnswer(status: status, errorDescription: text.isEmpty ? nil : text)
    }

    /// `Retry-After` as seconds or an HTTP date; nil when unreadable.
    package static func retryAfterDuration(_ value: String, now: Date = Date()) -> Duration? {
        let trimmed = value.trimmed()
        if let seconds = Int(trimmed) { return seconds >= 0 ? .seconds(seconds) : nil }
        guard let date = httpDate(trimmed) else { return nil }
        return .seconds(max(0, date.timeIntervalSince(now)))
    }

    /// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), as in `Date` and `Retry-After`.
    /// Parsed by hand: it is called on every upstream answer, and `DateFormatter` is slow and
    /// not thread-safe.
    package static func httpDate(_ text: String) -> Date? {
        let fields = text.split(separator: " ")
        guard fields.count == 6, fields[0].count == 4, fields[0].hasSuffix(","), fields[5] == "GMT",
            let day = Int(fields[1]), (1...31).contains(day),
            let month = months.firstIndex(of: String(fields[2])),
            let year = Int(fields[3]), (1970...9999).contains(year)
        else { return nil }
        let time = fields[4].split(separator: ":")
        guard time.count == 3, let hour = Int(time[0]), let minute = Int(time[1]), let second = Int(time[2]),
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        // Days since the epoch (proleptic Gregorian), after Howard Hinnant's days_from_civil.
        let shiftedYear = month < 2 ? year - 1 : year
        let era = shiftedYear / 400
        let yearOfEra = shiftedYear - era * 400
        let monthIndex = (month + 10) % 12
        let dayOfYear = (153 * monthIndex + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86_400 + hour * 3600 + minute * 60 + second))
    }

    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    // MARK: - JSON helpers

    private static func jsonObject(_ body: some Collection<UInt8>) -> [String: JSONValue]? {
        guard !body.isEmpty else { return nil }
        return (try? JSONDecoder().decode(JSONValue.self, from: Data(body)))?.object
    }

    private static func number(_ value: JSONValue?) -> Double? { value?.number }

    private static func integer(_ value: JSONValue?) -> Int? {
        number(value).flatMap { $0.rounded() == $0 ? Int(exactly: $0) : nil }
    }
}
