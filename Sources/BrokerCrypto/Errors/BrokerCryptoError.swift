/// An error from parsing key material or from a cryptographic operation.
///
/// Errors are equal when their codes are equal, so that tests can name the error they expect.
/// The reason is written for an operator: it names what is wrong and never contains key
/// material or a token.
package struct BrokerCryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is.
    package enum Code: String, Hashable, Sendable, CaseIterable {
        /// The text is not Base64 (standard or URL-safe).
        case invalidBase64
        /// The Base64 text or the JSON inside it ends early.
        case truncated
        /// The decoded text is not JSON.
        case notJSON
        /// The JSON is not a JWK: a field has the wrong type or is not base64url.
        case invalidJWK
        /// The key is not an RSA key.
        case unsupportedKeyType
        /// The key holds only public parts.
        case publicOnlyKey
        /// A private part (p, q, dp, dq, qi) is missing.
        case missingKeyPart
        /// The modulus is shorter than 2048 bits.
        case keyTooSmall
        /// The parts of the key do not belong together (for example p·q ≠ n).
        case inconsistentKeyParts
        /// A JWK Set holds several keys and none was chosen by kid.
        case ambiguousKeySet
        /// A JWK Set holds no key, or none with the requested kid.
        case keyNotFound
        /// The text is not a PEM private key or certificate.
        case invalidPEM
        /// PEM text where an EncodedJwk belongs.
        case pemInsteadOfJWK
        /// The PEM private key is encrypted with a passphrase.
        case encryptedKey
        /// A certificate could not be read or used.
        case invalidCertificate
        /// The certificate's public key does not match the private key.
        case certificateKeyMismatch
        /// The signing algorithm is not one of RS256, RS384, RS512.
        case unsupportedAlgorithm
        /// OpenSSL failed in an operation that should not fail.
        case openSSLFailure
        /// A provider (a TPM's, an HSM's) is not installed, or its device did not answer.
        case providerUnavailable
        /// The provider answered, but has no such key, or cannot use it.
        case providerKeyUnavailable
    }

    /// What kind of failure this is.
    package let code: Code
    /// A human-readable explanation, free of key material.
    package let reason: String
    /// Where the error was raised.
    package let fileID: String
    /// Where the error was raised.
    package let line: Int

    /// Creates an error.
    package init(_ code: Code, _ reason: String, fileID: String = #fileID, line: Int = #line) {
        self.code = code
        self.reason = reason
        self.fileID = fileID
        self.line = line
    }

    package static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    package func hash(into hasher: inout Hasher) { hasher.combine(code) }

    package var description: String { reason }
}
