import COpenSSL

extension RSAPrivateKey {
    // MARK: - Generating

    /// A new random RSA key (for the emulator's signing key and `dev`'s demo key).
    package static func generate(bits: Int = 2048) throws -> RSAPrivateKey {
        guard bits >= minimumBits else {
            throw BrokerCryptoError(.keyTooSmall, "refusing to generate a \(bits)-bit key; at least \(minimumBits) bits are required")
        }
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else {
            throw OpenSSLErrorQueue.error("EVP_PKEY_CTX_new_from_name(RSA) failed")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) == 1 else {
            throw OpenSSLErrorQueue.error("RSA key generation could not be set up")
        }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(context, &key) == 1, let key else {
            throw OpenSSLErrorQueue.error("RSA key generation failed")
        }
        return RSAPrivateKey(checked: EVPKey(taking: key))
    }

    // MARK: - Exporting

    /// The key as unencrypted PKCS#8 PEM. The caller must store it with mode 0600 and wipe the
    /// buffer when done.
    package func pkcs8PEM() throws -> [UInt8] {
        try refuseProviderKey()
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLErrorQueue.error("BIO_new failed") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PrivateKey(bio, backing.pointer, nil, nil, 0, nil, nil) == 1 else {
            throw OpenSSLErrorQueue.error("PEM_write_bio_PrivateKey failed")
        }
        var data: UnsafeMutablePointer<CChar>?
        let length = COpenSSL_BIO_get_mem_data(bio, &data)
        guard length > 0, let data else { throw OpenSSLErrorQueue.error("empty PEM output") }
        let raw = UnsafeMutableRawBufferPointer(start: data, count: length)
        defer { OPENSSL_cleanse(raw.baseAddress, raw.count) }
        return Array(raw)
    }

    /// The full private JWK (n, e, d, p, q, dp, dq, qi), as an EncodedJwk holds it, with the
    /// time it was made (`iat`) when given.
    package func privateJWK(kid: String?, algorithm: SigningAlgorithm? = .rs256, madeAt: Int? = nil) throws -> JWK {
        try refuseProviderKey()
        var members: [RSAParameter: String] = [:]
        for parameter in RSAParameter.privateKeyParts {
            guard let bn = backing.bigNumber(parameter) else {
                throw BrokerCryptoError(.missingKeyPart, "the key lacks its \(parameter) part")
            }
            var bytes = BigNumber.bytes(bn)
            BN_clear_free(bn)
            members[parameter] = Base64.urlEncoded(bytes)
            bytes.resetSecretBytes()
        }
        return JWK(
            kty: "RSA", kid: kid, alg: algorithm?.rawValue, use: "sig",
            n: members[.n], e: members[.e], d: members[.d], p: members[.p], q: members[.q],
            dp: members[.dp], dq: members[.dq], qi: members[.qi], iat: madeAt
        )
    }

    /// A key held by a provider (a TPM) has no private part to export: that is its point.
    private func refuseProviderKey() throws {
        if let provider {
            throw BrokerCryptoError(.providerKeyUnavailable, "the key is held by the \(provider) provider and its private part cannot leave it")
        }
    }
}
