import FoundationEssentials

/// JWS compact serialisation (RFC 7515 §7.1) for RSA signatures.
package enum JWS {
    /// The encoder for headers and claims: keys sorted so that output is stable, and `/` left
    /// unescaped so that `aud` reads as the issuer URL it is.
    private static func makeEncoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// `base64url(header) . base64url(payload) . base64url(signature)`.
    package static func sign(
        header: some Encodable,
        payload: some Encodable,
        key: RSAPrivateKey,
        algorithm: SigningAlgorithm
    ) throws -> String {
        let encoder = makeEncoder()
        let signingInput = try Base64.urlEncoded(encoder.encode(header)) + "." + Base64.urlEncoded(encoder.encode(payload))
        let signature = try key.sign(Array(signingInput.utf8), algorithm: algorithm)
        return signingInput + "." + Base64.urlEncoded(signature)
    }

    /// The three parts of a compact JWS, decoded, without checking the signature.
    package struct Parts: Sendable {
        /// The decoded header JSON.
        package var header: [UInt8]
        /// The decoded payload JSON.
        package var payload: [UInt8]
        /// The signature bytes.
        package var signature: [UInt8]
        /// `header.payload` as sent: the bytes the signature covers.
        package var signingInput: [UInt8]
    }

    /// Splits a compact JWS and decodes its parts.
    package static func split(_ token: String) throws -> Parts {
        let pieces = token.split(separator: ".", omittingEmptySubsequences: false)
        guard pieces.count == 3 else {
            throw BrokerCryptoError(.invalidBase64, "a compact JWS has three dot-separated parts, this has \(pieces.count)")
        }
        return try Parts(
            header: Base64.decode(pieces[0].utf8, what: "the JWS header"),
            payload: Base64.decode(pieces[1].utf8, what: "the JWS payload"),
            signature: Base64.decode(pieces[2].utf8, what: "the JWS signature"),
            signingInput: Array(pieces[0].utf8) + [UInt8(ascii: ".")] + Array(pieces[1].utf8)
        )
    }
}
