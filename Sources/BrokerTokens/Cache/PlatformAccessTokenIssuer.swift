package import BrokerConfig
package import BrokerCrypto
import BrokerPOSIX
import BrokerUpstream
package import FoundationEssentials
import NIOConcurrencyHelpers

/// Mints Altinn Platform Access Tokens: RS256 JWTs signed with the caller organisation's own
/// certificate key, named by the certificate's SHA-1 thumbprint, sent in the `PlatformAccessToken`
/// header. Minted locally and reused until most of the lifetime has passed.
package final class PlatformAccessTokenIssuer: Sendable {
    /// The settings.
    package let settings: PlatformAccessTokenSettings
    /// The signing certificate (leaf).
    package let certificate: Certificate
    private let key: RSAPrivateKey
    private let header: Header
    private let cached = NIOLockedValueBox<IssuedToken?>(nil)

    /// The audience Altinn's platform checks.
    package static let audience = "platform.altinn.no"

    struct Header: Encodable {
        var alg = "RS256"
        var typ = "JWT"
        var kid: String
        var x5t: String
    }

    /// The claims, exactly those Altinn's platform checks.
    package struct Claims: Codable, Sendable, Equatable {
        /// The organisation (such as `ttd`) or `platform`.
        package var iss: String
        /// The app.
        package var app: String
        /// `platform.altinn.no`.
        package var aud: String
        /// Now minus 5 s.
        package var nbf: Int
        /// Now plus the lifetime.
        package var exp: Int

        enum CodingKeys: String, CodingKey {
            case iss
            case app = "urn:altinn:app"
            case aud, nbf, exp
        }
    }

    /// An issuer for `settings` signing with `key`, whose certificate is `chain[0]`.
    package init(_ loaded: PlatformAccessKey) {
        settings = loaded.settings
        key = loaded.key
        certificate = loaded.certificate
        let thumbprint = loaded.certificate.sha1Thumbprint
        header = Header(
            kid: thumbprint.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true) }.joined(), x5t: Base64.urlEncoded(thumbprint))
    }

    /// A token with at least a quarter of its lifetime left, minted anew when needed.
    package func token(now: Date = Date()) throws -> IssuedToken {
        let lifetime = TimeInterval(settings.lifetimeSeconds)
        if let token = cached.withLockedValue({ $0 }), token.expiresAt.timeIntervalSince(now) > lifetime / 4 {
            return token
        }
        guard certificate.notAfter > now else {
            throw TokenError(
                .rejected,
                "the certificate of platform access token \(settings.name) (\(certificate.subject)) expired on \(UTCTimestamp.format(certificate.notAfter))")
        }
        let issuedAt = Int(now.timeIntervalSince1970)
        let claims = Claims(iss: settings.issuer, app: settings.app, aud: Self.audience, nbf: issuedAt - 5, exp: issuedAt + settings.lifetimeSeconds)
        let value = try JWS.sign(header: header, payload: claims, key: key, algorithm: .rs256)
        let token = IssuedToken(
            value: value, kind: .platformAccess, scope: "", expiresAt: Date(timeIntervalSince1970: TimeInterval(claims.exp)),
            obtainedAt: now, fingerprint: Digest.fingerprint(value)
        )
        cached.withLockedValue { $0 = token }
        return token
    }

    /// Whole days until the certificate expires (negative once expired).
    package func daysUntilCertificateExpiry(now: Date = Date()) -> Int {
        Int((certificate.notAfter.timeIntervalSince(now) / 86_400).rounded(.down))
    }
}
