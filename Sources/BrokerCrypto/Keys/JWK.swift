import FoundationEssentials

/// A JSON Web Key (RFC 7517) as far as this broker reads it: the RSA members, `kid`, `alg` and
/// `use`. Members are kept as their base64url text until a key is built from them.
package struct JWK: Sendable, Codable, Hashable {
    /// Key type: `RSA` is the only one accepted for signing.
    package var kty: String?
    /// Key id, sent as the JWS header `kid`.
    package var kid: String?
    /// The algorithm the key is meant for, if the generator recorded one.
    package var alg: String?
    /// `sig` for signing keys.
    package var use: String?
    /// RSA members (RFC 7518 §6.3), base64url.
    package var n, e, d, p, q, dp, dq, qi: String?
    /// EC curve, read only to name it in the error for an EC key.
    package var crv: String?
    /// When the key was made (Unix seconds), as `keygen` and rotation record it in the private
    /// JWK, so that a key's age can be shown. Not a member RFC 7517 defines; other readers
    /// ignore it, as the RFC requires, and the public JWK never carries it.
    package var iat: Int?

    enum CodingKeys: String, CodingKey {
        case kty, kid, alg, use, n, e, d, p, q, dp, dq, qi, crv, iat
    }

    /// Creates a JWK from its members.
    package init(
        kty: String? = "RSA", kid: String? = nil, alg: String? = nil, use: String? = nil,
        n: String? = nil, e: String? = nil, d: String? = nil, p: String? = nil, q: String? = nil,
        dp: String? = nil, dq: String? = nil, qi: String? = nil, iat: Int? = nil
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
        self.iat = iat
    }

    /// Whether the JWK holds a private key (its `d`).
    package var isPrivate: Bool { d != nil }

    /// The RFC 7638 thumbprint of an RSA key: base64url of the SHA-256 of its required public
    /// members in lexical order. Stable for a key, whatever else the JWK holds.
    package var thumbprint: String? {
        guard kty == "RSA", let e, let n else { return nil }
        return Base64.urlEncoded(Digest.sha256(Array(#"{"e":"\#(e)","kty":"RSA","n":"\#(n)"}"#.utf8)))
    }

    /// The public members only (`kty`, `kid`, `alg`, `use`, `n`, `e`): what is registered with
    /// Maskinporten. Drops every private part and the creation time.
    package var publicPart: JWK {
        JWK(kty: kty, kid: kid, alg: alg, use: use, n: n, e: e)
    }
}

/// A JWK Set (RFC 7517 §5): `{"keys":[...]}`.
package struct JWKSet: Sendable, Codable, Hashable {
    /// The keys, oldest first as `keygen --add-to` appends them.
    package var keys: [JWK]

    /// A set of `keys`.
    package init(keys: [JWK]) {
        self.keys = keys
    }

    /// The JSON text, members in a fixed order.
    package func json() throws -> [UInt8] {
        Array(try Self.encoder.encode(self))
    }

    /// The keys as a bare JSON array, as Samarbeidsportalen shows and takes a client's keys.
    package func arrayJSON() throws -> [UInt8] {
        Array(try Self.encoder.encode(keys))
    }

    /// One JWK's JSON text, members in the same order.
    package static func json(_ key: JWK) throws -> [UInt8] {
        Array(try encoder.encode(key))
    }

    private static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}

/// A JWK or a JWK Set, as found in an EncodedJwk.
private struct JWKDocument: Decodable {
    var keys: [JWK]?
    var key: JWK

    init(keys: [JWK]) {
        self.keys = keys
        key = JWK(kty: nil)
    }

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
    /// - Throws: `BrokerCryptoError` naming what is wrong, never quoting the key. The inputs
    ///   most often given by mistake (a PEM file, the public key array Samarbeidsportalen shows)
    ///   are named as what they are.
    package static func parseEncoded(_ text: some Collection<UInt8>, kid: String? = nil) throws -> JWK {
        var json = try decodeEncoded(text)
        defer { json.resetSecretBytes() }
        return try parseJSON(json, kid: kid)
    }

    /// Every key of an EncodedJwk, in the order it holds them (a single JWK is a set of one).
    package static func parseEncodedKeys(_ text: some Collection<UInt8>) throws -> [JWK] {
        var json = try decodeEncoded(text)
        defer { json.resetSecretBytes() }
        let document = try decodeDocument(json)
        return document.keys ?? [document.key]
    }

    /// Reads a JWK or JWK Set from its JSON text.
    package static func parseJSON(_ json: [UInt8], kid: String? = nil) throws -> JWK {
        let document = try decodeDocument(json)
        guard let keys = document.keys else { return document.key }
        return try select(from: keys, kid: kid)
    }

    /// The JSON inside an EncodedJwk: the text itself when it is JSON already, else its Base64
    /// decoding. PEM text, raw or Base64-encoded, is recognised and refused with what to do.
    private static func decodeEncoded(_ text: some Collection<UInt8>) throws -> [UInt8] {
        let trimmed = text.drop { isWhitespace($0) }
        try refusePEM(trimmed)
        if trimmed.first == UInt8(ascii: "{") || trimmed.first == UInt8(ascii: "[") {
            return Array(trimmed)
        }
        var decoded = try Base64.decode(trimmed, what: "the EncodedJwk")
        do {
            try refusePEM(decoded.drop { isWhitespace($0) })
        } catch {
            decoded.resetSecretBytes()
            throw error
        }
        return decoded
    }

    private static func decodeDocument(_ json: [UInt8]) throws -> JWKDocument {
        let body = json.drop { isWhitespace($0) }
        if body.first == UInt8(ascii: "[") {
            return try decodeArray(json)
        }
        guard body.first == UInt8(ascii: "{") else {
            throw BrokerCryptoError(.notJSON, "the decoded EncodedJwk is not JSON: a JWK starts with '{'")
        }
        do {
            return try JSONDecoder().decode(JWKDocument.self, from: Data(json))
        } catch DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context) {
            let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
            throw BrokerCryptoError(.invalidJWK, "the JWK member \"\(path.joined(separator: "."))\" has the wrong type")
        } catch {
            if body.last(where: { !isWhitespace($0) }) != UInt8(ascii: "}") {
                throw BrokerCryptoError(.truncated, "the decoded EncodedJwk is truncated: its JSON ends before the closing '}'")
            }
            throw BrokerCryptoError(.notJSON, "the decoded EncodedJwk is not valid JSON")
        }
    }

    /// A bare JSON array of JWKs. Samarbeidsportalen shows a client's keys this way, public
    /// parts only: the most likely array to be pasted here. An array of private keys is taken
    /// as the JWK Set it means.
    private static func decodeArray(_ json: [UInt8]) throws -> JWKDocument {
        guard let keys = try? JSONDecoder().decode([JWK].self, from: Data(json)) else {
            throw BrokerCryptoError(
                .notJSON, "the EncodedJwk is a JSON array but not an array of JWKs; an EncodedJwk holds one JWK ({...}) or a JWK Set ({\"keys\":[...]})")
        }
        if !keys.isEmpty, keys.allSatisfy({ !$0.isPrivate }) {
            throw BrokerCryptoError(
                .publicOnlyKey,
                "this is a JSON array of public keys, as Samarbeidsportalen shows them: the public part, which Maskinporten holds. The broker signs with the private part: give the EncodedJwk that was made with it (Base64 of the private JWK, with \"d\"), or make a new pair with `maskinporten-broker keygen --out FILE` and register its public part"
            )
        }
        return JWKDocument(keys: keys)
    }

    /// Refuses PEM text, naming what it is and where it belongs instead.
    private static func refusePEM(_ text: some Collection<UInt8>) throws {
        let marker = Array("-----BEGIN ".utf8)
        guard text.starts(with: marker) else { return }
        let label = String(decoding: text.dropFirst(marker.count).prefix(40).prefix { $0 != UInt8(ascii: "-") }, as: UTF8.self)
        let what = "a PEM file (-----BEGIN \(label)-----), not an EncodedJwk"
        if label.hasSuffix("PRIVATE KEY") {
            throw BrokerCryptoError(
                .pemInsteadOfJWK,
                "this is \(what). A PEM private key belongs in key.private_key_file, with its business certificate in key.certificate_file; a key registered in Samarbeidsportalen by kid is given as an EncodedJwk (Base64 of the private JWK), which `maskinporten-broker keygen --from THIS_FILE --out FILE` makes of this key"
            )
        }
        if label.hasSuffix("CERTIFICATE") {
            throw BrokerCryptoError(
                .pemInsteadOfJWK,
                "this is \(what). A business certificate belongs in key.certificate_file, with its private key in key.private_key_file")
        }
        if label.hasSuffix("PUBLIC KEY") {
            throw BrokerCryptoError(
                .publicOnlyKey,
                "this is \(what), and a public key: the part Maskinporten holds. The broker signs with the private part: give the EncodedJwk of the private key, or make a new pair with `maskinporten-broker keygen --out FILE`"
            )
        }
        throw BrokerCryptoError(.pemInsteadOfJWK, "this is \(what); an EncodedJwk is the Base64 of a JWK")
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
