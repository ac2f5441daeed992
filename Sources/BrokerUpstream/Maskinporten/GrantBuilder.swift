package import BrokerConfig
import BrokerCrypto
package import FoundationEssentials

/// The claims of a Maskinporten JWT grant, exactly as Digdir's "JWT grant" page lists them; no
/// others (Maskinporten refuses extra claims).
package struct GrantClaims: Codable, Sendable, Equatable {
    /// Maskinporten's issuer, exactly.
    package var aud: String
    /// The client id.
    package var iss: String
    /// Issued at, seconds since the epoch.
    package var iat: Int
    /// Expiry, at most 120 s after `iat`.
    package var exp: Int
    /// Unique per grant: Maskinporten refuses a grant it has seen.
    package var jti: String
    /// Space-separated scopes.
    package var scope: String
    /// Audience-restricted token: the resources, as a JSON array.
    package var resource: [String]?
    /// Delegation: the organisation number the token is for.
    package var consumerOrg: String?
    /// System user, as `[{"type":"urn:altinn:systemuser",...}]`.
    package var authorizationDetails: [SystemUserAuthorization]?

    /// Claims with the given values.
    package init(
        aud: String, iss: String, iat: Int, exp: Int, jti: String, scope: String,
        resource: [String]? = nil, consumerOrg: String? = nil, authorizationDetails: [SystemUserAuthorization]? = nil
    ) {
        self.aud = aud
        self.iss = iss
        self.iat = iat
        self.exp = exp
        self.jti = jti
        self.scope = scope
        self.resource = resource
        self.consumerOrg = consumerOrg
        self.authorizationDetails = authorizationDetails
    }

    enum CodingKeys: String, CodingKey {
        case aud, iss, iat, exp, jti, scope, resource
        case consumerOrg = "consumer_org"
        case authorizationDetails = "authorization_details"
    }
}

/// One `authorization_details` entry for an Altinn system user.
package struct SystemUserAuthorization: Codable, Sendable, Equatable {
    /// The organisation that owns the system user.
    package struct Organisation: Codable, Sendable, Equatable {
        /// Always `iso6523-actorid-upis`.
        package var authority: String
        /// `0192:<organisation number>`.
        package var id: String

        enum CodingKeys: String, CodingKey {
            case authority
            case id = "ID"
        }
    }

    /// Always `urn:altinn:systemuser`.
    package var type: String
    /// The organisation owning the system user.
    package var systemUserOrganisation: Organisation
    /// The system user's external reference, when it has one.
    package var externalRef: String?

    /// The entry for the system user of `organisation`.
    package init(organisation: OrganisationNumber, externalRef: String?) {
        type = "urn:altinn:systemuser"
        systemUserOrganisation = Organisation(authority: "iso6523-actorid-upis", id: "0192:\(organisation.digits)")
        self.externalRef = externalRef
    }

    enum CodingKeys: String, CodingKey {
        case type
        case systemUserOrganisation = "systemuser_org"
        case externalRef
    }
}

/// The JWS header of a grant: `alg` and either `kid` or `x5c`.
package struct GrantHeader: Codable, Sendable, Equatable {
    /// RS256, RS384 or RS512.
    package var alg: String
    /// The key id registered on the integration.
    package var kid: String?
    /// The business certificate chain, leaf first, standard Base64 DER.
    package var x5c: [String]?
}

/// Builds and signs grants for one profile.
package struct GrantBuilder: Sendable {
    /// `exp - iat`: the longest Maskinporten allows.
    package static let lifetimeSeconds = 120

    /// The profile the grants are for.
    package let profile: Profile
    /// Its key.
    package let credentials: SigningCredentials
    private let header: GrantHeader

    /// A builder for `profile` signing with `credentials`.
    package init(profile: Profile, credentials: SigningCredentials) {
        self.profile = profile
        self.credentials = credentials
        header = GrantHeader(
            alg: credentials.algorithm.rawValue,
            kid: credentials.certificateChain == nil ? credentials.kid : nil,
            x5c: credentials.certificateChain?.map { Base64.standardEncoded($0.der) }
        )
    }

    /// The claims of a grant issued at `now`.
    package func claims(now: Date, jti: String = UUID().uuidString.lowercased()) -> GrantClaims {
        let issuedAt = Int(now.timeIntervalSince1970)
        return GrantClaims(
            aud: profile.environment.issuer,
            iss: profile.clientID,
            iat: issuedAt,
            exp: issuedAt + Self.lifetimeSeconds,
            jti: jti,
            scope: profile.scopes.joined(separator: " "),
            resource: profile.resource,
            consumerOrg: profile.consumerOrg?.digits,
            authorizationDetails: profile.systemUserOrg.map { [SystemUserAuthorization(organisation: $0, externalRef: profile.systemUserExternalRef)] }
        )
    }

    /// A signed grant, issued now, with a fresh `jti`: signed with `key` (one of the profile's
    /// JWK Set), else with the profile's default key or certificate.
    package func makeGrant(now: Date = Date(), key: SigningKey? = nil) throws -> String {
        guard let key else {
            return try JWS.sign(header: header, payload: claims(now: now), key: credentials.privateKey, algorithm: credentials.algorithm)
        }
        let keyHeader = GrantHeader(alg: key.algorithm.rawValue, kid: key.kid, x5c: nil)
        return try JWS.sign(header: keyHeader, payload: claims(now: now), key: key.privateKey, algorithm: key.algorithm)
    }
}
