/// A rule of Maskinporten's JWT grant that a grant broke, with the error Maskinporten's answer
/// carries. MP-100, MP-110 and MP-120 are Digdir's documented codes; the others are the
/// emulator's own, numbered in the same style, so tests can tell every rule apart.
package enum GrantViolation: String, Sendable, CaseIterable, Error {
    case badSignature = "MP-100"
    case notAJWT = "MP-101"
    case unsupportedAlgorithm = "MP-102"
    case noKeyReference = "MP-103"
    case unknownClient = "MP-104"
    case unknownKid = "MP-105"
    case wrongAudience = "MP-110"
    case untrustedCertificate = "MP-120"
    case issuedAtSkew = "MP-130"
    case lifetimeTooLong = "MP-131"
    case expired = "MP-132"
    case missingClaim = "MP-133"
    case reusedJTI = "MP-134"
    case extraClaims = "MP-135"
    case resourceNotArray = "MP-136"
    case invalidConsumerOrg = "MP-137"
    case invalidAuthorizationDetails = "MP-138"
    case unknownScope = "MP-140"
    case noSystemUser = "MP-150"
    case noDelegation = "MP-151"

    /// The OAuth2 `error` of the answer.
    package var error: String {
        switch self {
        case .unknownScope: "invalid_scope"
        case .resourceNotArray, .invalidAuthorizationDetails: "invalid_request"
        default: "invalid_grant"
        }
    }

    /// The text of `error_description`, before the detail.
    package var text: String {
        switch self {
        case .badSignature: "Invalid assertion. Client authentication failed. Invalid JWT signature"
        case .notAJWT: "Invalid assertion. The assertion is not a signed JWT"
        case .unsupportedAlgorithm: "Invalid assertion. Unsupported JWT alg"
        case .noKeyReference: "Invalid assertion. The JWT header has neither kid nor x5c"
        case .unknownClient: "Invalid assertion. Client authentication failed. Unknown client"
        case .unknownKid: "Invalid assertion. Client authentication failed. Unknown kid"
        case .wrongAudience: "Invalid assertion. Client authentication failed. Invalid JWT claim aud"
        case .untrustedCertificate: "Invalid assertion. Client authentication failed. The JWT is signed with an invalid certificate"
        case .issuedAtSkew: "Invalid assertion. The JWT iat is more than 10 seconds off"
        case .lifetimeTooLong: "Invalid assertion. The JWT exp is more than 120 seconds after iat"
        case .expired: "Invalid assertion. The JWT has expired"
        case .missingClaim: "Invalid assertion. A required claim is missing"
        case .reusedJTI: "Invalid assertion. The JWT jti has been used before"
        case .extraClaims: "Invalid assertion. The JWT has claims that are not allowed"
        case .resourceNotArray: "The resource claim must be a JSON array"
        case .invalidConsumerOrg: "Invalid assertion. consumer_org must be an organisation number string"
        case .invalidAuthorizationDetails: "authorization_details is not a valid system user authorization"
        case .unknownScope: "Invalid scope"
        case .noSystemUser: "Invalid assertion. No system user exists for this client and the organisation in authorization_details"
        case .noDelegation: "Invalid assertion. The organisation in consumer_org has not delegated this scope to this client"
        }
    }

    /// `error_description`: the code, the text and the detail.
    package func description(detail: String?) -> String {
        "\(rawValue): \(text)" + (detail.map { ": \($0)" } ?? "")
    }
}

/// A refused grant: the rule and what was off.
package struct GrantRefusal: Error, Sendable {
    /// The rule broken.
    package var violation: GrantViolation
    /// What exactly was wrong, when there is more to say.
    package var detail: String?

    init(_ violation: GrantViolation, _ detail: String? = nil) {
        self.violation = violation
        self.detail = detail
    }
}
