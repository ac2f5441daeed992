// The JSON bodies of the socket API's answers (docs/socket-api.md; openapi.yaml), encoded with
// JSONCoding.encoder. Token answers for the hot path are prepared once per token (TokenBodies).

import BrokerTokens
import FoundationEssentials

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
    var keys: [KeyBody]?
    var rotation: RotationBody?
    /// Cached variants (delegation chosen per request): a count, never the organisations.
    var variants: Int?
    /// Where the held token came from: `upstream`, or `restored` (kept through a restart in
    /// systemd's file descriptor store); absent while none is held.
    var origin: String?

    enum CodingKeys: String, CodingKey {
        case profile, environment, kind, scopes, state, keys, rotation, variants, origin
        case expiresAt = "expires_at"
        case lastError = "last_error"
    }
}

/// One key of a profile in `/v1/profiles`: never key material, only its id and what is known.
struct KeyBody: Encodable {
    var kid: String
    var bits: Int
    var signs: Bool
    var maskinporten: String
    var madeAt: String?
    var ageDays: Int?
    /// Where the key lives: `memory` (read from a file), or `tpm` with the TPM in `device`.
    var location: String
    var device: String?

    init(_ key: KeyStatus, now: Date = Date()) {
        kid = key.kid
        bits = key.bits
        location = key.location
        device = key.device
        signs = key.signs
        maskinporten = key.verdict.rawValue
        madeAt = key.madeAt.map(JSONCoding.rfc3339)
        ageDays = key.madeAt.map { Int((now.timeIntervalSince($0) / 86_400).rounded(.down)) }
    }

    enum CodingKeys: String, CodingKey {
        case kid, bits, signs, maskinporten, location, device
        case madeAt = "made_at"
        case ageDays = "age_days"
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

/// A profile's key rotation in `/v1/profiles`.
struct RotationBody: Encodable {
    var state: String
    var lastRotation: String?
    var nextRotation: String?
    var pendingKid: String?
    var failures: Int
    var error: String?

    init(_ status: KeyRotation.Status) {
        state = status.state.rawValue
        lastRotation = status.lastRotation.map(JSONCoding.rfc3339)
        nextRotation = status.nextRotation.map(JSONCoding.rfc3339)
        pendingKid = status.pendingKid
        failures = status.failures
        error = status.error
    }

    enum CodingKeys: String, CodingKey {
        case state, failures, error
        case lastRotation = "last_rotation"
        case nextRotation = "next_rotation"
        case pendingKid = "pending_kid"
    }
}
