import Foundation

/// A JSON Web Key (RFC 7517) as far as this broker reads it: the RSA members, `kid`, `alg` and
/// `use`. Members are kept as their base64url text until a key is built from them.
public struct JWK: Sendable, Codable, Hashable {
    /// Key type: `RSA` is the only one accepted for signing.
    public var kty: String?
    /// Key id, sent as the JWS header `kid`.
    public var kid: String?
    /// The algorithm the key is meant for, if the generator recorded one.
    public var alg: String?
    /// `sig` for signing keys.
    public var use: String?
    /// RSA members (RFC 7518 §6.3), base64url.
    public var n, e, d, p, q, dp, dq, qi: String?
    /// EC curve, read only to name it in the error for an EC key.
    public var crv: String?

    enum CodingKeys: String, CodingKey {
        case kty, kid, alg, use, n, e, d, p, q, dp, dq, qi, crv
    }

    /// Creates a JWK from its members.
    public init(
        kty: String? = "RSA", kid: String? = nil, alg: String? = nil, use: String? = nil,
        n: String? = nil, e: String? = nil, d: String? = nil, p: String? = nil, q: String? = nil,
        dp: String? = nil, dq: String? = nil, qi: String? = nil
    ) {
        self.kty = kty
        self.kid = kid
        self.alg = alg
        self.use = use
        self.n = n
        self.e = e
        self.d = d
        self.p = p
        self.q = q
        self.dp = dp
        self.dq = dq
        self.qi = qi
    }
}

/// A JWK or a JWK Set, as found in an EncodedJwk.
private struct JWKDocument: Decodable {
    var keys: [JWK]?
    var key: JWK

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        keys = try container.decodeIfPresent([JWK].self, forKey: .keys)
        key = try JWK(from: decoder)
    }

    enum CodingKeys: String, CodingKey { case keys }
}

// MARK: - EncodedJwk

extension JWK {
    /// Reads an EncodedJwk: a JWK or a JWK Set, Base64-encoded (standard or URL-safe, padded or
    /// not, wrapped in lines). Plain JSON is accepted as well, for keys pasted undecoded.
    ///
    /// - Parameters:
    ///   - text: the EncodedJwk. Not kept: the caller should wipe it after the call.
    ///   - kid: the key to take from a JWK Set holding several.
    /// - Throws: `BrokerCryptoError` naming what is wrong, never quoting the key.
    public static func parseEncoded(_ text: some Collection<UInt8>, kid: String? = nil) throws -> JWK {
        let trimmed = text.drop { isWhitespace($0) }
        var json: [UInt8]
        if trimmed.first == UInt8(ascii: "{") {
            json = Array(trimmed)
        } else {
            json = try Base64.decode(trimmed, what: "the EncodedJwk")
        }
        defer { json.resetSecretBytes() }
        return try parseJSON(json, kid: kid)
    }

    /// Reads a JWK or JWK Set from its JSON text.
    public static func parseJSON(_ json: [UInt8], kid: String? = nil) throws -> JWK {
        let body = json.drop { isWhitespace($0) }
        guard body.first == UInt8(ascii: "{") else {
            throw BrokerCryptoError(.notJSON, "the decoded EncodedJwk is not JSON: a JWK starts with '{'")
        }
        let document: JWKDocument
        do {
            document = try JSONDecoder().decode(JWKDocument.self, from: Data(json))
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            throw BrokerCryptoError(.invalidJWK, "the JWK member \"\(path.joined(separator: "."))\" has the wrong type")
        } catch {
            if body.last(where: { !isWhitespace($0) }) != UInt8(ascii: "}") {
                throw BrokerCryptoError(.truncated, "the decoded EncodedJwk is truncated: its JSON ends before the closing '}'")
            }
            throw BrokerCryptoError(.notJSON, "the decoded EncodedJwk is not valid JSON")
        }
        guard let keys = document.keys else { return document.key }
        return try select(from: keys, kid: kid)
    }

    private static func select(from keys: [JWK], kid: String?) throws -> JWK {
        let kids = keys.map { $0.kid ?? "(none)" }.joined(separator: ", ")
        if let kid {
            guard let key = keys.first(where: { $0.kid == kid }) else {
                throw BrokerCryptoError(.keyNotFound, "the JWK Set has no key with kid \"\(kid)\" (it holds kids: \(kids.isEmpty ? "none" : kids))")
            }
            return key
        }
        switch keys.count {
        case 0:
            throw BrokerCryptoError(.keyNotFound, "the JWK Set holds no keys")
        case 1:
            return keys[0]
        default:
            throw BrokerCryptoError(.ambiguousKeySet, "the JWK Set holds \(keys.count) keys (kids: \(kids)); name the one to use with key.kid")
        }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\t")
    }
}
