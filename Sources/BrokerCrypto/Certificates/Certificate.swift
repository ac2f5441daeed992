import BrokerPOSIX
import COpenSSL
package import FoundationEssentials

/// Owns one `X509`.
final class X509Backing: @unchecked Sendable {
    // @unchecked: the certificate is never modified after parsing; OpenSSL allows concurrent
    // reads of one X509.
    let pointer: OpaquePointer

    init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        X509_free(pointer)
    }
}

/// An X.509 certificate, as used for Maskinporten's `x5c` grants and Altinn's Platform Access
/// Tokens.
package struct Certificate: Sendable {
    let backing: X509Backing

    /// The DER encoding, as `x5c` carries it (Base64, not base64url).
    package let der: [UInt8]
    /// The subject in RFC 2253 form.
    package let subject: String
    /// The issuer in RFC 2253 form.
    package let issuer: String
    /// The subject's `serialNumber` attribute: for Norwegian business certificates, the
    /// organisation number.
    package let subjectSerialNumber: String?
    /// Start of validity.
    package let notBefore: Date
    /// End of validity.
    package let notAfter: Date

    init(taking pointer: OpaquePointer) throws {
        backing = X509Backing(taking: pointer)
        var derPointer: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(pointer, &derPointer)
        guard length > 0, let derPointer else { throw OpenSSLErrorQueue.error(.invalidCertificate, "the certificate could not be DER-encoded") }
        der = Array(UnsafeBufferPointer(start: derPointer, count: Int(length)))
        COpenSSL_free(derPointer)
        subject = Self.rfc2253(X509_get_subject_name(pointer))
        issuer = Self.rfc2253(X509_get_issuer_name(pointer))
        subjectSerialNumber = Self.attribute(NID_serialNumber, of: X509_get_subject_name(pointer))
        guard let start = Self.date(X509_get0_notBefore(pointer)), let end = Self.date(X509_get0_notAfter(pointer)) else {
            throw OpenSSLErrorQueue.error(.invalidCertificate, "the certificate's validity dates could not be read")
        }
        notBefore = start
        notAfter = end
    }

    /// One certificate from its DER encoding (an `x5c` entry, decoded).
    package init(der: [UInt8]) throws {
        let parsed: OpaquePointer? = der.withUnsafeBufferPointer { buffer in
            var cursor: UnsafePointer<UInt8>? = buffer.baseAddress
            return d2i_X509(nil, &cursor, buffer.count)
        }
        guard let parsed else {
            throw OpenSSLErrorQueue.error(.invalidCertificate, "the DER data is not an X.509 certificate")
        }
        try self.init(taking: parsed)
    }

    // MARK: - Reading PEM

    /// Every certificate in PEM text, in file order (for a chain: leaf first). Private key blocks
    /// in the same text are skipped.
    package static func chain(pem: [UInt8]) throws -> [Certificate] {
        var certificates: [Certificate] = []
        try pem.withUnsafeBytes { buffer in
            guard let bio = BIO_new_mem_buf(buffer.baseAddress, Int32(buffer.count)) else {
                throw OpenSSLErrorQueue.error("BIO_new_mem_buf failed")
            }
            defer { BIO_free(bio) }
            while let x509 = PEM_read_bio_X509(bio, nil, COpenSSL_no_passphrase, nil) {
                certificates.append(try Certificate(taking: x509))
            }
        }
        // Reaching the end of the text leaves a "no start line" error behind; anything else is real.
        let leftovers = OpenSSLErrorQueue.drain().filter { !$0.containsText("no start line") }
        if !leftovers.isEmpty {
            throw BrokerCryptoError(.invalidCertificate, "a PEM certificate could not be read (OpenSSL: \(leftovers.joined(separator: "; ")))")
        }
        guard !certificates.isEmpty else {
            throw BrokerCryptoError(.invalidPEM, "no PEM certificate found (expected -----BEGIN CERTIFICATE-----)")
        }
        return certificates
    }

    // MARK: - Properties

    /// The certificate's RSA public key.
    package var publicKey: RSAPublicKey {
        get throws {
            guard let key = X509_get_pubkey(backing.pointer) else {
                throw OpenSSLErrorQueue.error(.invalidCertificate, "the certificate's public key could not be read")
            }
            let evp = EVPKey(taking: key)
            guard evp.isRSA else {
                throw BrokerCryptoError(.unsupportedKeyType, "the certificate holds an \(evp.typeName) key; an RSA key is needed")
            }
            return RSAPublicKey(backing: evp)
        }
    }

    /// SHA-1 of the DER encoding: the "thumbprint" Altinn uses as `kid` and `x5t`.
    package var sha1Thumbprint: [UInt8] {
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        guard X509_digest(backing.pointer, EVP_sha1(), &digest, &length) == 1 else { return [] }
        return Array(digest.prefix(Int(length)))
    }

    /// Whether `issuerCertificate` issued this certificate (names, key identifiers and signature).
    package func isIssued(by issuerCertificate: Certificate) -> Bool {
        guard X509_check_issued(issuerCertificate.backing.pointer, backing.pointer) == X509_V_OK else { return false }
        guard let key = X509_get_pubkey(issuerCertificate.backing.pointer) else { return false }
        defer { EVP_PKEY_free(key) }
        let verified = X509_verify(backing.pointer, key) == 1
        _ = OpenSSLErrorQueue.drain()
        return verified
    }

    // MARK: - Helpers

    private static func rfc2253(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        guard X509_NAME_print_ex(bio, name, 0, COpenSSL_XN_FLAG_RFC2253()) >= 0 else { return "" }
        var data: UnsafeMutablePointer<CChar>?
        let length = COpenSSL_BIO_get_mem_data(bio, &data)
        guard length > 0, let data else { return "" }
        return String(decoding: UnsafeRawBufferPointer(start: data, count: length), as: UTF8.self)
    }

    private static func attribute(_ nid: Int32, of name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        let index = X509_NAME_get_index_by_NID(name, nid, -1)
        guard index >= 0, let entry = X509_NAME_get_entry(name, index), let value = X509_NAME_ENTRY_get_data(entry),
            let bytes = ASN1_STRING_get0_data(value)
        else { return nil }
        return String(decoding: UnsafeBufferPointer(start: bytes, count: Int(ASN1_STRING_length(value))), as: UTF8.self)
    }

    private static func date(_ time: UnsafePointer<ASN1_TIME>?) -> Date? {
        guard let time else { return nil }
        var components = tm()
        guard ASN1_TIME_to_tm(time, &components) == 1 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(timegm(&components)))
    }
}
