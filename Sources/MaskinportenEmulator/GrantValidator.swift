import BrokerCrypto
import FoundationEssentials

/// What a valid grant asked for.
struct ValidatedGrant: Sendable {
    var clientID: String
    var scopes: [String]
    var jti: String?
    var expiresAt: Int
    var consumerOrg: String?
    /// The `authorization_details` as sent, and the system user organisations they name.
    var authorizationDetails: JSONValue?
    var systemUserOrgs: [String] = []
    var resource: [String]?
    /// The registered key that signed it; nil for a business certificate.
    var kid: String?
}

/// Checks a JWT grant against every rule of Maskinporten's "JWT grant" page.
struct GrantValidator {
    /// The claims Maskinporten accepts; any other is refused.
    static let allowedClaims: Set<String> = ["aud", "iss", "iat", "exp", "jti", "scope", "resource", "consumer_org", "authorization_details"]

    let issuer: String
    let clients: [String: RegisteredClient]
    let now: Date

    /// The grant, or the first rule it breaks (with a detail for the description).
    func validate(_ assertion: String) -> Result<ValidatedGrant, GrantRefusal> {
        let parts: JWS.Parts
        do { parts = try JWS.split(assertion) } catch { return .failure(GrantRefusal(.notAJWT, nil)) }
        guard let header = decode(parts.header)?.object, let claims = decode(parts.payload)?.object else {
            return .failure(GrantRefusal(.notAJWT, "header or claims are not JSON objects"))
        }
        guard let algName = header["alg"]?.string, let algorithm = try? SigningAlgorithm(name: algName) else {
            return .failure(GrantRefusal(.unsupportedAlgorithm, header["alg"]?.string))
        }
        guard let clientID = claims["iss"]?.string else { return .failure(GrantRefusal(.missingClaim, "iss")) }
        guard let client = clients[clientID] else { return .failure(GrantRefusal(.unknownClient, clientID)) }

        // The key: a registered kid, or a registered certificate in x5c.
        let publicKey: RSAPublicKey
        if let kid = header["kid"]?.string {
            guard let jwk = client.keys.first(where: { $0.kid == kid }), let key = try? RSAPublicKey(jwk: jwk) else {
                return .failure(GrantRefusal(.unknownKid, kid))
            }
            publicKey = key
        } else if let chain = header["x5c"]?.array {
            guard let leaf = chain.first?.string, client.certificates.contains(leaf),
                let der = try? Base64.decode(leaf.utf8), let certificate = try? Certificate(der: der),
                let key = try? certificate.publicKey
            else {
                return .failure(GrantRefusal(.untrustedCertificate, nil))
            }
            if certificate.notAfter < now || certificate.notBefore > now {
                return .failure(GrantRefusal(.untrustedCertificate, "the certificate is not valid now"))
            }
            publicKey = key
        } else {
            return .failure(GrantRefusal(.noKeyReference, nil))
        }
        guard publicKey.verify(parts.signature, for: parts.signingInput, algorithm: algorithm) else {
            return .failure(GrantRefusal(.badSignature, nil))
        }

        // Claims.
        let extra = Set(claims.keys).subtracting(Self.allowedClaims)
        guard extra.isEmpty else { return .failure(GrantRefusal(.extraClaims, extra.sorted().joined(separator: ", "))) }
        guard let audience = claims["aud"]?.string else { return .failure(GrantRefusal(.missingClaim, "aud")) }
        guard audience == issuer else { return .failure(GrantRefusal(.wrongAudience, "expected \(issuer)")) }
        guard let iat = claims["iat"]?.number else { return .failure(GrantRefusal(.missingClaim, "iat")) }
        guard let exp = claims["exp"]?.number else { return .failure(GrantRefusal(.missingClaim, "exp")) }
        let clock = now.timeIntervalSince1970
        guard abs(iat - clock) <= 10 else { return .failure(GrantRefusal(.issuedAtSkew, "iat is \(Int(iat - clock)) s from the server's clock")) }
        guard exp - iat <= 120 else { return .failure(GrantRefusal(.lifetimeTooLong, "exp - iat = \(Int(exp - iat))")) }
        guard exp > clock else { return .failure(GrantRefusal(.expired, nil)) }
        guard let scope = claims["scope"]?.string, !scope.isEmpty else { return .failure(GrantRefusal(.missingClaim, "scope")) }
        let scopes = scope.split(separator: " ").map(String.init)
        let unknown = scopes.filter { !client.scopes.contains($0) }
        guard unknown.isEmpty else { return .failure(GrantRefusal(.unknownScope, "not allowed for this client: \(unknown.joined(separator: " "))")) }

        var resource: [String]?
        if let value = claims["resource"] {
            guard let items = value.array, !items.isEmpty, items.allSatisfy({ $0.string != nil }) else {
                return .failure(GrantRefusal(.resourceNotArray, nil))
            }
            resource = items.compactMap(\.string)
        }
        var consumerOrg: String?
        if let value = claims["consumer_org"] {
            guard let org = value.string, org.count == 9, org.allSatisfy(\.isNumber) else {
                return .failure(GrantRefusal(.invalidConsumerOrg, nil))
            }
            consumerOrg = org
        }
        var systemUserOrgs: [String] = []
        if let details = claims["authorization_details"] {
            guard let entries = details.array, !entries.isEmpty, entries.allSatisfy(Self.isSystemUserAuthorization) else {
                return .failure(GrantRefusal(.invalidAuthorizationDetails, nil))
            }
            systemUserOrgs = entries.compactMap { $0.object?["systemuser_org"]?.object?["ID"]?.string.map { String($0.dropFirst(5)) } }
        }
        return .success(
            ValidatedGrant(
                clientID: clientID, scopes: scopes, jti: claims["jti"]?.string, expiresAt: Int(exp),
                consumerOrg: consumerOrg, authorizationDetails: claims["authorization_details"], systemUserOrgs: systemUserOrgs, resource: resource,
                kid: header["kid"]?.string
            ))
    }

    /// `{"type":"urn:altinn:systemuser","systemuser_org":{"authority":"iso6523-actorid-upis","ID":"0192:<orgno>"}}`.
    static func isSystemUserAuthorization(_ value: JSONValue) -> Bool {
        guard let entry = value.object, entry["type"]?.string == "urn:altinn:systemuser",
            let org = entry["systemuser_org"]?.object, org["authority"]?.string == "iso6523-actorid-upis",
            let id = org["ID"]?.string, id.hasPrefix("0192:"), id.count == 14
        else { return false }
        return Set(entry.keys).isSubset(of: ["type", "systemuser_org", "externalRef"])
    }

    private func decode(_ bytes: [UInt8]) -> JSONValue? {
        try? JSONDecoder().decode(JSONValue.self, from: Data(bytes))
    }
}
