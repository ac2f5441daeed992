import COpenSSL

/// One-shot message digests.
package enum Digest {
    /// SHA-256 of `bytes`.
    package static func sha256(_ bytes: some Collection<UInt8>) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: 32)
        var length: UInt32 = 0
        let input = Array(bytes)
        let ok = EVP_Digest(input, input.count, &output, &length, SigningAlgorithm.rs256.digest, nil)
        precondition(ok == 1 && length == 32, "SHA-256 failed")
        return output
    }

    /// A short, log-safe fingerprint of a secret (a token): the first 12 hex digits of its
    /// SHA-256. It identifies a token in audit lines without revealing it.
    package static func fingerprint(_ secret: String) -> String {
        sha256(secret.utf8).prefix(6).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
