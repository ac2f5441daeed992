import BrokerPOSIX
import COpenSSL
package import FoundationEssentials

/// An RSA private key of at least 2048 bits whose parts have been checked to belong together.
///
/// Built from a JWK with `EVP_PKEY_fromdata` or from a PEM file (PKCS#1 or PKCS#8).
package struct RSAPrivateKey: Sendable {
    private let storage: Storage
    private enum Storage: Sendable {
        /// In this process's memory (the default provider).
        case memory(EVPKey)
        /// Held by a provider's device, never in this process's memory.
        case provider(ProviderHeldKey)
    }

    /// The key in this process's memory; only the paths for such keys use it.
    var backing: EVPKey {
        guard case .memory(let key) = storage else { preconditionFailure("a key held by a provider has no copy in memory") }
        return key
    }

    /// The OpenSSL provider that holds the key (`tpm2`), or nil for a key in this process's
    /// memory (the default provider).
    package var provider: String? {
        guard case .provider(let held) = storage else { return nil }
        return held.provider
    }

    /// The TPM (or other device) that holds a provider's key, as the operator would look for it
    /// (`device:/dev/tpmrm0`, `swtpm:path=...`); nil for a key in memory.
    package var device: String? {
        guard case .provider(let held) = storage else { return nil }
        return held.provider == "tpm2" ? ProviderKeys.device(ProviderKeys.tpmTCTI) : held.uri
    }

    /// The smallest modulus accepted, as Maskinporten and jwt-kit require.
    package static let minimumBits = 2048

    /// The modulus length in bits.
    package var bits: Int {
        switch storage {
        case .memory(let key): key.bits
        case .provider(let held): held.bits
        }
    }

    /// The public half.
    package var publicKey: RSAPublicKey {
        get throws {
            switch storage {
            case .memory(let key): return try RSAPublicKey(n: key.publicBytes(RSAParameter.n) ?? [], e: key.publicBytes(RSAParameter.e) ?? [])
            case .provider(let held): return try held.using { key, _ in try Self.providerPublicKey(key) }
            }
        }
    }

    /// A provider's key gives its public half as a SubjectPublicKeyInfo (its parameters may not
    /// be readable one by one), read back as a key of the default provider.
    private static func providerPublicKey(_ key: EVPKey) throws -> RSAPublicKey {
        var der: UnsafeMutablePointer<UInt8>?
        let length = i2d_PUBKEY(key.pointer, &der)
        guard length > 0, let der else { throw OpenSSLErrorQueue.error("i2d_PUBKEY failed: the provider gave no public key") }
        defer { COpenSSL_free(der) }
        var cursor: UnsafePointer<UInt8>? = UnsafePointer(der)
        guard let key = d2i_PUBKEY(nil, &cursor, Int(length)) else { throw OpenSSLErrorQueue.error("d2i_PUBKEY failed") }
        return RSAPublicKey(backing: EVPKey(taking: key))
    }

    // MARK: - From a JWK

    /// Builds the key from an RSA JWK holding all of n, e, d, p, q, dp, dq and qi.
    package init(jwk: JWK) throws {
        guard let kty = jwk.kty else {
            throw BrokerCryptoError(.invalidJWK, "the JWK has no \"kty\" member")
        }
        guard kty == "RSA" else {
            let curve = jwk.crv.map { " (\($0))" } ?? ""
            throw BrokerCryptoError(.unsupportedKeyType, "the JWK is an \(kty)\(curve) key; Maskinporten grants need an RSA key")
        }
        guard let n = jwk.n, let e = jwk.e else {
            throw BrokerCryptoError(.invalidJWK, "the RSA JWK lacks its modulus \"n\" or exponent \"e\"")
        }
        guard let d = jwk.d else {
            throw BrokerCryptoError(.publicOnlyKey, "the JWK is a public key (no \"d\"); the broker needs the private key the public one was made from")
        }
        let named: [(member: String, text: String?, param: RSAParameter)] = [
            ("n", n, RSAParameter.n), ("e", e, RSAParameter.e), ("d", d, RSAParameter.d),
            ("p", jwk.p, RSAParameter.p), ("q", jwk.q, RSAParameter.q),
            ("dp", jwk.dp, RSAParameter.dp), ("dq", jwk.dq, RSAParameter.dq),
            ("qi", jwk.qi, RSAParameter.qi),
        ]
        let missing = named.filter { $0.text == nil }.map(\.member)
        guard missing.isEmpty else {
            throw BrokerCryptoError(
                .missingKeyPart,
                "the RSA JWK lacks the private part\(missing.count > 1 ? "s" : "") \(missing.joined(separator: ", ")); export the key with all of n, e, d, p, q, dp, dq, qi"
            )
        }
        var parts = KeyParts()
        defer { parts.free() }
        for entry in named {
            var bytes = try Base64.decodeMember(entry.text!, member: entry.member)
            defer { bytes.resetSecretBytes() }
            parts.append(entry.param, try BigNumber.make(bytes))
        }
        try parts.validate()
        let key = try parts.makeKey()
        storage = .memory(key)
        try Self.checkRoundTrip(key)
    }

    // MARK: - From PEM

    /// Reads the first private key in PEM text (PKCS#1 `RSA PRIVATE KEY` or PKCS#8
    /// `PRIVATE KEY`); other PEM blocks, such as certificates, are skipped.
    package init(pem: [UInt8]) throws {
        let text = String(decoding: pem, as: UTF8.self)
        if text.containsText("ENCRYPTED PRIVATE KEY") || text.containsText("Proc-Type: 4,ENCRYPTED") {
            throw BrokerCryptoError(
                .encryptedKey, "the private key is encrypted with a passphrase; store it unencrypted with mode 0600 (openssl pkey -in KEY -out KEY.plain)")
        }
        guard text.containsText("PRIVATE KEY-----") else {
            throw BrokerCryptoError(.invalidPEM, "no PEM private key found (expected -----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----)")
        }
        let loaded: OpaquePointer? = pem.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PrivateKey(bio, nil, COpenSSL_no_passphrase, nil)
        }
        guard let loaded else {
            throw OpenSSLErrorQueue.error(.invalidPEM, "the PEM private key could not be read")
        }
        let key = EVPKey(taking: loaded)
        guard key.isRSA else {
            throw BrokerCryptoError(.unsupportedKeyType, "the private key is an \(key.typeName) key; Maskinporten grants need an RSA key")
        }
        var parts = KeyParts()
        defer { parts.free() }
        for param in RSAParameter.privateKeyParts {
            guard let bn = key.bigNumber(param) else {
                throw BrokerCryptoError(.missingKeyPart, "the private key lacks its \(param) part")
            }
            parts.append(param, bn)
        }
        try parts.validate()
        storage = .memory(key)
        try Self.checkRoundTrip(key)
    }

    // MARK: - Held by a provider

    /// The key at `uri` (`handle:0x81000001`, `file:/path/key.tss2.pem`) held by `provider`
    /// (`tpm2`): never in this process's memory. `tcti` chooses the TPM (else
    /// `TPM2OPENSSL_TCTI`, else the kernel's resource manager).
    package init(uri: String, provider: String, tcti: String? = nil) throws {
        let context = try ProviderKeys.context(provider, tcti: tcti)
        let key = try ProviderKeys.serially { try ProviderKeys.key(uri: uri, in: context) }
        guard key.isRSA else {
            throw BrokerCryptoError(.unsupportedKeyType, "the key \(uri) is an \(key.typeName) key; Maskinporten grants need an RSA key")
        }
        guard key.bits >= Self.minimumBits else {
            throw BrokerCryptoError(.keyTooSmall, "the key \(uri) has \(key.bits) bits; at least \(Self.minimumBits) are required")
        }
        storage = .provider(ProviderHeldKey(key, in: context, uri: uri))
        // A first signature, checked with the public half: the TPM answers and the key is its.
        let message = Array("maskinporten-broker key check".utf8)
        let signature = try sign(message, algorithm: .rs256)
        guard try publicKey.verify(signature, for: message, algorithm: .rs256) else {
            throw BrokerCryptoError(.inconsistentKeyParts, "the key \(uri) signed, but its signature does not verify with its public half")
        }
    }

    /// A new RSA key of `bits` made inside `provider`'s device (a TPM makes it and never lets its
    /// private part out).
    package static func generate(provider: String, bits: Int = 2048, tcti: String? = nil) throws -> RSAPrivateKey {
        let library = try ProviderKeys.context(provider, tcti: tcti)
        // The context keeps the key type's pointer: a C string that outlives it.
        return try ProviderKeys.serially {
            try generateAlone(in: library, bits: bits)
        }
    }

    private static func generateAlone(in library: ProviderContext, bits: Int) throws -> RSAPrivateKey {
        let provider = library.name
        return try "RSA".withCString { type in
            try library.query.withCString { query in
                guard let context = EVP_PKEY_CTX_new_from_name(library.pointer, type, query) else {
                    throw OpenSSLErrorQueue.error("EVP_PKEY_CTX_new_from_name(RSA, provider=\(provider)) failed")
                }
                defer { EVP_PKEY_CTX_free(context) }
                guard EVP_PKEY_keygen_init(context) == 1, EVP_PKEY_CTX_set_rsa_keygen_bits(context, Int32(bits)) == 1 else {
                    throw OpenSSLErrorQueue.error("EVP_PKEY_keygen_init failed")
                }
                var made: OpaquePointer?
                guard EVP_PKEY_generate(context, &made) == 1, let made else { throw OpenSSLErrorQueue.error("EVP_PKEY_generate failed in \(provider)") }
                return RSAPrivateKey(made: ProviderHeldKey(EVPKey(taking: made, heldByProvider: true), in: library, uri: nil))
            }
        }
    }

    /// The key as its provider writes it in PEM (a TPM's: `TSS2 PRIVATE KEY`, the key wrapped by
    /// the TPM's storage key, of use on that TPM alone).
    package func providerPEM() throws -> String {
        guard case .provider(let held) = storage else { throw BrokerCryptoError(.openSSLFailure, "the key is not held by a provider") }
        return try held.using { key, context in try Self.encoded(key, in: context) }
    }

    private static func encoded(_ key: EVPKey, in context: ProviderContext) throws -> String {
        // The encoder keeps the output type's and the query's pointers until it is freed: C
        // strings that live that long, not Swift's temporary ones (which made it fail or not
        // with the size of the environment).
        return try "PEM".withCString { outputType in
            try context.query.withCString { query in
                guard let encoder = OSSL_ENCODER_CTX_new_for_pkey(key.pointer, COpenSSL_EVP_PKEY_KEYPAIR(), outputType, nil, query) else {
                    throw OpenSSLErrorQueue.error("OSSL_ENCODER_CTX_new_for_pkey failed")
                }
                defer { OSSL_ENCODER_CTX_free(encoder) }
                var data: UnsafeMutablePointer<UInt8>?
                var length = 0
                guard OSSL_ENCODER_to_data(encoder, &data, &length) == 1, let data else { throw OpenSSLErrorQueue.error("OSSL_ENCODER_to_data failed") }
                defer { COpenSSL_free(data) }
                return String(decoding: UnsafeBufferPointer(start: data, count: length), as: UTF8.self)
            }
        }
    }

    // MARK: - Signing

    /// Signs `message` with RSASSA-PKCS1-v1_5 and the algorithm's digest; a provider's key signs
    /// in its provider.
    package func sign(_ message: some ContiguousBytes, algorithm: SigningAlgorithm) throws -> [UInt8] {
        switch storage {
        case .memory(let key): return try Self.sign(message, algorithm: algorithm, with: key, in: nil)
        case .provider(let held): return try held.using { key, context in try Self.sign(message, algorithm: algorithm, with: key, in: context) }
        }
    }

    private static func sign(_ message: some ContiguousBytes, algorithm: SigningAlgorithm, with key: EVPKey, in library: ProviderContext?) throws -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { throw OpenSSLErrorQueue.error("EVP_MD_CTX_new failed") }
        defer { EVP_MD_CTX_free(context) }
        if let library {
            let started = algorithm.digestName.withCString { digest in
                library.query.withCString { query in EVP_DigestSignInit_ex(context, nil, digest, library.pointer, query, key.pointer, nil) }
            }
            guard started == 1 else {
                throw BrokerCryptoError(
                    .providerKeyUnavailable, "the \(library.name) key could not sign: \(OpenSSLErrorQueue.drain().joined(separator: "; "))")
            }
        } else {
            guard EVP_DigestSignInit(context, nil, algorithm.digest, nil, key.pointer) == 1 else {
                throw OpenSSLErrorQueue.error("EVP_DigestSignInit failed")
            }
        }
        var signature = [UInt8](repeating: 0, count: Int(EVP_PKEY_get_size(key.pointer)))
        var length = signature.count
        let ok = message.withUnsafeBytes { input in
            EVP_DigestSign(context, &signature, &length, input.baseAddress?.assumingMemoryBound(to: UInt8.self), input.count)
        }
        guard ok == 1 else {
            if let library {
                throw BrokerCryptoError(.providerKeyUnavailable, "the \(library.name) key could not sign: \(OpenSSLErrorQueue.drain().joined(separator: "; "))")
            }
            throw OpenSSLErrorQueue.error("EVP_DigestSign failed")
        }
        signature.removeSubrange(length...)
        return signature
    }

    /// Signs and verifies a fixed message: a key whose public and private halves disagree in a
    /// way the part checks missed is refused here rather than at Maskinporten.
    private static func checkRoundTrip(_ key: EVPKey) throws {
        let message = Array("maskinporten-broker key check".utf8)
        let probe = RSAPrivateKey(checked: key)
        let signature = try probe.sign(message, algorithm: .rs256)
        guard RSAPublicKey(backing: key).verify(signature, for: message, algorithm: .rs256) else {
            throw BrokerCryptoError(.inconsistentKeyParts, "the key's private and public parts do not belong together: a test signature did not verify")
        }
    }

    init(checked key: EVPKey) {
        storage = .memory(key)
    }

    private init(made held: ProviderHeldKey) {
        storage = .provider(held)
    }
}

// MARK: - Parts

/// The eight big numbers of an RSA private key, freed with `BN_clear_free`.
private struct KeyParts {
    private var params: [(name: RSAParameter, bn: OpaquePointer)] = []

    mutating func append(_ name: RSAParameter, _ bn: OpaquePointer) {
        params.append((name, bn))
    }

    func free() {
        for param in params { BN_clear_free(param.bn) }
    }

    private func value(_ name: RSAParameter) -> OpaquePointer {
        params.first { $0.name == name }!.bn
    }

    /// Checks what makes an RSA key: size, p·q = n, e·d ≡ 1 mod (p-1) and (q-1), and the CRT
    /// values derived from them. Each failure names the part that is off.
    func validate() throws {
        let n = value(RSAParameter.n)
        let e = value(RSAParameter.e)
        let d = value(RSAParameter.d)
        let p = value(RSAParameter.p)
        let q = value(RSAParameter.q)
        let dp = value(RSAParameter.dp)
        let dq = value(RSAParameter.dq)
        let qi = value(RSAParameter.qi)

        let bits = Int(BN_num_bits(n))
        guard bits >= RSAPrivateKey.minimumBits else {
            throw BrokerCryptoError(.keyTooSmall, "the RSA key has \(bits) bits; at least \(RSAPrivateKey.minimumBits) are required")
        }
        guard BN_is_odd(e) == 1, BN_is_one(e) == 0 else {
            throw BrokerCryptoError(.inconsistentKeyParts, "the RSA public exponent e is not an odd number above 1")
        }
        guard let context = BN_CTX_new() else { throw OpenSSLErrorQueue.error("BN_CTX_new failed") }
        defer { BN_CTX_free(context) }
        let scratch = (0..<4).map { _ in BN_new() }
        defer { for bignum in scratch { BN_clear_free(bignum) } }
        guard let product = scratch[0], let pMinus1 = scratch[1], let qMinus1 = scratch[2], let reduced = scratch[3] else {
            throw OpenSSLErrorQueue.error("BN_new failed")
        }
        func fail(_ what: String) -> BrokerCryptoError {
            BrokerCryptoError(.inconsistentKeyParts, "the RSA key's parts do not belong together: \(what)")
        }
        guard BN_mul(product, p, q, context) == 1 else { throw OpenSSLErrorQueue.error("BN_mul failed") }
        guard BN_cmp(product, n) == 0 else { throw fail("p·q does not equal n") }
        guard BN_sub(pMinus1, p, BN_value_one()) == 1, BN_sub(qMinus1, q, BN_value_one()) == 1 else {
            throw OpenSSLErrorQueue.error("BN_sub failed")
        }
        for (modulus, name) in [(pMinus1, "p-1"), (qMinus1, "q-1")] {
            guard BN_mod_mul(reduced, e, d, modulus, context) == 1 else { throw OpenSSLErrorQueue.error("BN_mod_mul failed") }
            guard BN_is_one(reduced) == 1 else { throw fail("e·d is not 1 modulo \(name)") }
        }
        for (exponent, modulus, name) in [(dp, pMinus1, "dp is not d mod (p-1)"), (dq, qMinus1, "dq is not d mod (q-1)")] {
            guard BN_nnmod(reduced, d, modulus, context) == 1 else { throw OpenSSLErrorQueue.error("BN_nnmod failed") }
            guard BN_cmp(reduced, exponent) == 0 else { throw fail(name) }
        }
        guard BN_mod_mul(reduced, qi, q, p, context) == 1 else { throw OpenSSLErrorQueue.error("BN_mod_mul failed") }
        guard BN_is_one(reduced) == 1 else { throw fail("qi·q is not 1 modulo p") }
    }

    /// The key, built with `EVP_PKEY_fromdata`.
    func makeKey() throws -> EVPKey {
        guard let builder = OSSL_PARAM_BLD_new() else { throw OpenSSLErrorQueue.error("OSSL_PARAM_BLD_new failed") }
        defer { OSSL_PARAM_BLD_free(builder) }
        for param in params {
            guard OSSL_PARAM_BLD_push_BN(builder, param.name.cName, param.bn) == 1 else {
                throw OpenSSLErrorQueue.error("OSSL_PARAM_BLD_push_BN failed")
            }
        }
        guard let built = OSSL_PARAM_BLD_to_param(builder) else { throw OpenSSLErrorQueue.error("OSSL_PARAM_BLD_to_param failed") }
        defer { OSSL_PARAM_free(built) }
        return try EVPKey.fromData(built, selection: COpenSSL_EVP_PKEY_KEYPAIR())
    }
}

extension EVPKey {
    /// `EVP_PKEY_fromdata` for an RSA key.
    static func fromData(_ params: UnsafeMutablePointer<OSSL_PARAM>, selection: Int32) throws -> EVPKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else {
            throw OpenSSLErrorQueue.error("EVP_PKEY_CTX_new_from_name(RSA) failed")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_fromdata_init(context) == 1 else { throw OpenSSLErrorQueue.error("EVP_PKEY_fromdata_init failed") }
        var key: OpaquePointer?
        guard EVP_PKEY_fromdata(context, &key, selection, params) == 1, let key else {
            throw OpenSSLErrorQueue.error(.inconsistentKeyParts, "OpenSSL refused the RSA key parts")
        }
        return EVPKey(taking: key)
    }
}
