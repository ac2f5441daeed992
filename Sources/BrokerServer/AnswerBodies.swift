// The JSON bodies of the socket API's answers (docs/socket-api.md; openapi.yaml), encoded with
// JSONCoding.encoder. Token answers for the hot path are prepared once per token (TokenBodies).

struct TokenBody: Encodable {
    var accessToken: String
    var tokenType: String
    var expiresIn: Int
    var expiresAt: String
    var scope: String
    var profile: String
    var kind: String

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresIn = "expires_in"
        case expiresAt = "expires_at"
        case scope, profile, kind
    }
}

struct PlatformAccessTokenBody: Encodable {
    var accessToken: String
    var header: String
    var expiresIn: Int
    var expiresAt: String

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case header
        case expiresIn = "expires_in"
        case expiresAt = "expires_at"
    }
}

struct ProfileBody: Encodable {
    var profile: String
    var environment: String
    var kind: String
    var scopes: [String]
    var state: String
    var expiresAt: String?
    var lastError: String?

    enum CodingKeys: String, CodingKey {
        case profile, environment, kind, scopes, state
        case expiresAt = "expires_at"
        case lastError = "last_error"
    }
}

struct ReadinessProblem: Encodable {
    var state: String
    var error: String?
}

struct ReadinessBody: Encodable {
    var status: String
    var failing: [String: ReadinessProblem]?
    var certificateDaysLeft: [String: Int]?

    enum CodingKeys: String, CodingKey {
        case status, failing
        case certificateDaysLeft = "certificate_days_left"
    }
}
