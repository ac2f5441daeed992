import COpenSSL

/// Owns one `EVP_PKEY`. The only place the key's lifetime is managed.
final class EVPKey: @unchecked Sendable {
    // @unchecked: an EVP_PKEY is immutable once built and OpenSSL allows concurrent use of one
    // key from several threads for signing and verifying.
    let pointer: OpaquePointer
    /// Held by a provider's device (a TPM): freeing it is a command to the device, run alone.
    private let heldByProvider: Bool

    init(taking pointer: OpaquePointer, heldByProvider: Bool = false) {
        self.pointer = pointer
        self.heldByProvider = heldByProvider
    }

    deinit {
        if heldByProvider {
            let pointer = self.pointer
            _ = try? ProviderKeys.serially { EVP_PKEY_free(pointer) }
        } else {
            EVP_PKEY_free(pointer)
        }
    }

    /// The modulus length in bits.
    var bits: Int { Int(EVP_PKEY_get_bits(pointer)) }

    /// Whether the key is an RSA key.
    var isRSA: Bool { EVP_PKEY_is_a(pointer, "RSA") == 1 }

    /// The key's type name as OpenSSL reports it (`RSA`, `EC`, `ED25519`, ...).
    var typeName: String {
        guard let name = EVP_PKEY_get0_type_name(pointer) else { return "unknown" }
        return String(cString: name)
    }

    /// One big-number parameter (`n`, `e`, `d`, `rsa-factor1`, ...), or nil if the key lacks it.
    /// The caller frees it; private parameters with `BN_clear_free`.
    func bigNumber(_ parameter: RSAParameter) -> OpaquePointer? {
        var bn: OpaquePointer?
        guard EVP_PKEY_get_bn_param(pointer, parameter.cName, &bn) == 1 else {
            ERR_clear_error()
            return nil
        }
        return bn
    }

    /// A public parameter as unsigned big-endian bytes.
    func publicBytes(_ parameter: RSAParameter) -> [UInt8]? {
        guard let bn = bigNumber(parameter) else { return nil }
        defer { BN_free(bn) }
        return BigNumber.bytes(bn)
    }
}

/// Helpers over `BIGNUM`.
enum BigNumber {
    /// Unsigned big-endian bytes of a big number.
    static func bytes(_ bn: OpaquePointer) -> [UInt8] {
        let count = Int((BN_num_bits(bn) + 7) / 8)
        var out = [UInt8](repeating: 0, count: count)
        if count > 0 { BN_bn2bin(bn, &out) }
        return out
    }

    /// A new `BIGNUM` from unsigned big-endian bytes; the caller frees it.
    static func make(_ bytes: [UInt8]) throws -> OpaquePointer {
        guard let bn = BN_bin2bn(bytes, Int32(bytes.count), nil) else {
            throw OpenSSLErrorQueue.error("BN_bin2bn failed")
        }
        return bn
    }
}

/// OpenSSL 3 parameter names of RSA key parts (`OSSL_PKEY_PARAM_RSA_*`; the numbered ones are
/// string-pasting macros Swift does not import).
///
/// Static strings on purpose: `OSSL_PARAM_BLD_push_BN` keeps the name pointer it is given until
/// the parameters are built, so the name must outlive the call.
struct RSAParameter: Hashable, CustomStringConvertible {
    let name: StaticString

    static let n = RSAParameter(name: "n")
    static let e = RSAParameter(name: "e")
    static let d = RSAParameter(name: "d")
    static let p = RSAParameter(name: "rsa-factor1")
    static let q = RSAParameter(name: "rsa-factor2")
    static let dp = RSAParameter(name: "rsa-exponent1")
    static let dq = RSAParameter(name: "rsa-exponent2")
    static let qi = RSAParameter(name: "rsa-coefficient1")
    static let privateKeyParts: [RSAParameter] = [n, e, d, p, q, dp, dq, qi]

    /// The NUL-terminated name, valid for the life of the process.
    var cName: UnsafePointer<CChar> {
        UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
    }

    var description: String { name.description }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.name.utf8Start == rhs.name.utf8Start }
    func hash(into hasher: inout Hasher) { hasher.combine(name.utf8Start) }
}
