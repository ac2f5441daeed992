import COpenSSL
package import FoundationEssentials

/// An RSA public key, for verifying signatures (the emulator, tests) and for publishing as a JWK.
package struct RSAPublicKey: Sendable {
    let backing: EVPKey

    init(backing: EVPKey) {
        self.backing = backing
    }

    /// Builds the key from its modulus and exponent (unsigned big-endian bytes).
    package init(n: [UInt8], e: [UInt8]) throws {
        guard !n.isEmpty, !e.isEmpty else {
            throw BrokerCryptoError(.invalidJWK, "an RSA public key needs both n and e")
        }
        let modulus = try BigNumber.make(n)
        defer { BN_free(modulus) }
        let exponent = try BigNumber.make(e)
        defer { BN_free(exponent) }
        guard let builder = OSSL_PARAM_BLD_new() else { throw OpenSSLErrorQueue.error("OSSL_PARAM_BLD_new failed") }
        defer { OSSL_PARAM_BLD_free(builder) }
        guard OSSL_PARAM_BLD_push_BN(builder, RSAParameter.n.cName, modulus) == 1,
            OSSL_PARAM_BLD_push_BN(builder, RSAParameter.e.cName, exponent) == 1,
            let params = OSSL_PARAM_BLD_to_param(builder)
        else {
            throw OpenSSLErrorQueue.error("building RSA public key parameters failed")
        }
        defer { OSSL_PARAM_free(params) }
        backing = try EVPKey.fromData(params, selection: COpenSSL_EVP_PKEY_PUBLIC_KEY())
    }

    /// Builds the key from a public JWK (`kty` RSA with `n` and `e`).
    package init(jwk: JWK) throws {
        guard jwk.kty == "RSA" else {
            throw BrokerCryptoError(.unsupportedKeyType, "the JWK is not an RSA key")
        }
        guard let n = jwk.n, let e = jwk.e else {
            throw BrokerCryptoError(.invalidJWK, "the RSA JWK lacks \"n\" or \"e\"")
        }
        try self.init(n: Base64.decodeMember(n, member: "n"), e: Base64.decodeMember(e, member: "e"))
    }

    /// The modulus length in bits.
    package var bits: Int { backing.bits }

    /// The public JWK: `kty`, `n`, `e` and, when given, `kid`, `alg` and `use`.
    package func jwk(kid: String? = nil, algorithm: SigningAlgorithm? = nil) -> JWK {
        JWK(
            kty: "RSA", kid: kid, alg: algorithm?.rawValue, use: "sig",
            n: Base64.urlEncoded(backing.publicBytes(RSAParameter.n) ?? []),
            e: Base64.urlEncoded(backing.publicBytes(RSAParameter.e) ?? [])
        )
    }

    /// The key as PEM (`-----BEGIN PUBLIC KEY-----`, SubjectPublicKeyInfo), as `openssl pkey
    /// -pubout` writes it.
    package func pem() throws -> String {
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLErrorQueue.error("BIO_new failed") }
        defer { BIO_free(bio) }
        guard PEM_write_bio_PUBKEY(bio, backing.pointer) == 1 else {
            throw OpenSSLErrorQueue.error("PEM_write_bio_PUBKEY failed")
        }
        var data: UnsafeMutablePointer<CChar>?
        let length = COpenSSL_BIO_get_mem_data(bio, &data)
        guard length > 0, let data else { throw OpenSSLErrorQueue.error("empty PEM output") }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    /// Whether `signature` is a valid RSASSA-PKCS1-v1_5 signature of `message`.
    package func verify(_ signature: some ContiguousBytes, for message: some ContiguousBytes, algorithm: SigningAlgorithm) -> Bool {
        guard let context = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(context) }
        guard EVP_DigestVerifyInit(context, nil, algorithm.digest, nil, backing.pointer) == 1 else {
            _ = OpenSSLErrorQueue.drain()
            return false
        }
        let result = signature.withUnsafeBytes { sig in
            message.withUnsafeBytes { msg in
                EVP_DigestVerify(
                    context,
                    sig.baseAddress?.assumingMemoryBound(to: UInt8.self), sig.count,
                    msg.baseAddress?.assumingMemoryBound(to: UInt8.self), msg.count
                )
            }
        }
        if result != 1 { _ = OpenSSLErrorQueue.drain() }
        return result == 1
    }

    /// Whether this is the public half of `privateKey`.
    package func matches(_ privateKey: RSAPrivateKey) -> Bool {
        EVP_PKEY_eq(backing.pointer, privateKey.backing.pointer) == 1
    }
}
