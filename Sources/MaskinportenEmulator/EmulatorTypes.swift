package import BrokerCrypto

/// A Maskinporten client (integration) registered with the emulator.
package struct RegisteredClient: Sendable, Codable, Equatable {
    /// The client id: the grant's `iss`.
    package var clientID: String
    /// Scopes the client may ask for.
    package var scopes: [String]
    /// Public JWKs, found by `kid`.
    package var keys: [JWK]
    /// Business certificates (standard Base64 DER, as in `x5c`) the client may sign with.
    package var certificates: [String]

    /// Creates a client.
    package init(clientID: String, scopes: [String], keys: [JWK] = [], certificates: [String] = []) {
        self.clientID = clientID
        self.scopes = scopes
        self.keys = keys
        self.certificates = certificates
    }

    enum CodingKeys: String, CodingKey {
        case clientID = "client_id"
        case scopes, keys, certificates
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        clientID = try container.decode(String.self, forKey: .clientID)
        scopes = try container.decodeIfPresent([String].self, forKey: .scopes) ?? []
        keys = try container.decodeIfPresent([JWK].self, forKey: .keys) ?? []
        certificates = try container.decodeIfPresent([String].self, forKey: .certificates) ?? []
    }
}

/// Which emulated endpoint a fault applies to.
package enum FaultTarget: String, Sendable, Codable, CaseIterable {
    /// Maskinporten's `/token`.
    case token
    /// Altinn's `/authentication/api/v1/exchange/maskinporten`.
    case exchange
    /// The self-service API's `{api}/{client_id}/jwks`.
    case jwks
    /// The Notifications API (`/notifications/api/v1/...`), after its token check.
    case notifications
}

/// A fault injected into one endpoint's answers.
package struct Fault: Sendable, Codable, Equatable {
    /// Answer with this HTTP status (and a JSON error body) instead of the real answer.
    package var status: Int?
    /// With `status`: a `Retry-After` header, in seconds.
    package var retryAfter: Int?
    /// Wait this long before answering.
    package var delayMilliseconds: Int?
    /// Close the connection without answering.
    package var drop: Bool?
    /// Never answer (until the client gives up).
    package var hang: Bool?
    /// Answer 200 with a body that is neither JSON nor a JWT.
    package var garbage: Bool?
    /// Send the real answer slowly, as a proxy or a busy server may: a `100 Continue` first,
    /// then the head, then the body chunked in three pieces, each on its own after a pause.
    package var trickle: Bool?
    /// With `trickle`: the pause before each piece, milliseconds (30 unless set).
    package var gapMilliseconds: Int?
    /// How many requests the fault affects before it clears itself; nil: until cleared.
    package var count: Int?

    /// Creates a fault.
    package init(
        status: Int? = nil, retryAfter: Int? = nil, delayMilliseconds: Int? = nil, drop: Bool? = nil, hang: Bool? = nil, garbage: Bool? = nil,
        trickle: Bool? = nil, gapMilliseconds: Int? = nil,
        count: Int? = nil
    ) {
        self.status = status
        self.retryAfter = retryAfter
        self.delayMilliseconds = delayMilliseconds
        self.drop = drop
        self.hang = hang
        self.garbage = garbage
        self.trickle = trickle
        self.gapMilliseconds = gapMilliseconds
        self.count = count
    }

    /// Whether the fault replaces the answer (rather than only delaying it).
    package var replacesAnswer: Bool {
        status != nil || drop == true || hang == true || garbage == true
    }

    /// The delay, as a duration.
    package var delay: Duration? {
        delayMilliseconds.map { .milliseconds($0) }
    }

    enum CodingKeys: String, CodingKey {
        case status
        case retryAfter = "retry_after"
        case delayMilliseconds = "delay_ms"
        case gapMilliseconds = "gap_ms"
        case drop, hang, garbage, trickle, count
    }
}

/// Knobs that change what the emulator issues.
package struct EmulatorSettings: Sendable, Codable, Equatable {
    /// Lifetime of Maskinporten access tokens (`expires_in`), seconds.
    package var tokenLifetime: Int = 120
    /// Lifetime of Altinn tokens (their `exp`), seconds. Deliberately unlike `tokenLifetime`, so
    /// that a client taking the wrong one is caught.
    package var altinnTokenLifetime: Int = 1800
    /// Added to the Altinn token's `exp`: negative values issue tokens that are already expired.
    package var altinnExpOffset: Int = 0
    /// Added to the `Date` header, seconds: pretends the emulator's clock is off.
    package var dateOffset: Int = 0
    /// Added to the emulator's whole clock, seconds: the grant checks (`iat`, `exp`), the tokens
    /// it issues and the `Date` header. A wall-clock jump upstream.
    package var clockOffset: Int = 0
    /// How long a key registered through the self-service API takes to be accepted in grants,
    /// seconds: Maskinporten's caches take a while to see a new key.
    package var keyRegistrationDelay: Int = 0
    /// Organisation numbers refused as a system user's or in `consumer_org`, as Maskinporten
    /// refuses an organisation with no system user (or no delegation) for the client.
    package var refusedOrganisations: [String] = []

    /// Settings with the given values.
    package init(
        tokenLifetime: Int = 120, altinnTokenLifetime: Int = 1800, altinnExpOffset: Int = 0, dateOffset: Int = 0, clockOffset: Int = 0,
        keyRegistrationDelay: Int = 0, refusedOrganisations: [String] = []
    ) {
        self.refusedOrganisations = refusedOrganisations
        self.keyRegistrationDelay = keyRegistrationDelay
        self.tokenLifetime = tokenLifetime
        self.altinnTokenLifetime = altinnTokenLifetime
        self.altinnExpOffset = altinnExpOffset
        self.dateOffset = dateOffset
        self.clockOffset = clockOffset
    }

    enum CodingKeys: String, CodingKey {
        case tokenLifetime = "token_lifetime"
        case altinnTokenLifetime = "altinn_token_lifetime"
        case altinnExpOffset = "altinn_exp_offset"
        case dateOffset = "date_offset"
        case clockOffset = "clock_offset"
        case keyRegistrationDelay = "key_registration_delay"
        case refusedOrganisations = "refused_organisations"
    }

    package init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        tokenLifetime = try container.decodeIfPresent(Int.self, forKey: .tokenLifetime) ?? 120
        altinnTokenLifetime = try container.decodeIfPresent(Int.self, forKey: .altinnTokenLifetime) ?? 1800
        altinnExpOffset = try container.decodeIfPresent(Int.self, forKey: .altinnExpOffset) ?? 0
        dateOffset = try container.decodeIfPresent(Int.self, forKey: .dateOffset) ?? 0
        clockOffset = try container.decodeIfPresent(Int.self, forKey: .clockOffset) ?? 0
        keyRegistrationDelay = try container.decodeIfPresent(Int.self, forKey: .keyRegistrationDelay) ?? 0
        refusedOrganisations = try container.decodeIfPresent([String].self, forKey: .refusedOrganisations) ?? []
    }
}

/// Request counters, so tests can assert how many upstream calls were made.
package struct EmulatorStats: Sendable, Codable, Equatable {
    /// Requests to `/token`.
    package var tokenRequests = 0
    /// Access tokens issued.
    package var tokensIssued = 0
    /// Grants refused.
    package var grantsRefused = 0
    /// Requests to the Altinn exchange.
    package var exchangeRequests = 0
    /// Altinn tokens issued.
    package var exchangesIssued = 0
    /// Exchanges refused.
    package var exchangesRefused = 0
    /// Answers replaced by an injected fault.
    package var faultsInjected = 0
    /// Access tokens issued, by the kid of the key that signed the grant.
    package var tokensIssuedByKid: [String: Int] = [:]
    /// Key sets registered through the self-service API (`POST {api}/{client_id}/jwks`).
    package var jwksRegistrations = 0
    /// Access tokens issued for a system user's organisation or a `consumer_org`, by number.
    package var tokensIssuedByOrganisation: [String: Int] = [:]

    /// Zero counters.
    package init() {}

    enum CodingKeys: String, CodingKey {
        case tokenRequests = "token_requests"
        case tokensIssued = "tokens_issued"
        case grantsRefused = "grants_refused"
        case exchangeRequests = "exchange_requests"
        case exchangesIssued = "exchanges_issued"
        case exchangesRefused = "exchanges_refused"
        case faultsInjected = "faults_injected"
        case tokensIssuedByKid = "tokens_issued_by_kid"
        case jwksRegistrations = "jwks_registrations"
        case tokensIssuedByOrganisation = "tokens_issued_by_organisation"
    }
}
