/// Base64 in the two alphabets JOSE meets: base64url without padding for everything we write, and
/// a lenient decoder for what people paste into config (standard or URL-safe alphabet, with or
/// without padding, wrapped in lines).
package enum Base64 {
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let standardAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Values of every byte in either alphabet; 0xFF for bytes outside both.
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in standardAlphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        table[Int(UInt8(ascii: "-"))] = 62
        table[Int(UInt8(ascii: "_"))] = 63
        return table
    }()

    // MARK: - Encoding

    /// base64url without padding (RFC 7515 §2), as JWS needs it.
    package static func urlEncoded(_ bytes: some Collection<UInt8>) -> String {
        encode(bytes, alphabet: urlAlphabet, pad: false)
    }

    /// Standard Base64 with padding (as used in `x5c`).
    package static func standardEncoded(_ bytes: some Collection<UInt8>) -> String {
        encode(bytes, alphabet: standardAlphabet, pad: true)
    }

    private static func encode(_ bytes: some Collection<UInt8>, alphabet: [UInt8], pad: Bool) -> String {
        let input = Array(bytes)
        let fullGroups = input.count / 3
        let rest = input.count % 3
        let outputCount = pad ? (input.count + 2) / 3 * 4 : fullGroups * 4 + (rest == 0 ? 0 : rest + 1)
        return String(unsafeUninitializedCapacity: outputCount) { output in
            var out = 0
            var index = 0
            for _ in 0..<fullGroups {
                let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                output[out] = alphabet[Int(value >> 18 & 63)]
                output[out + 1] = alphabet[Int(value >> 12 & 63)]
                output[out + 2] = alphabet[Int(value >> 6 & 63)]
                output[out + 3] = alphabet[Int(value & 63)]
                out += 4
                index += 3
            }
            if rest > 0 {
                var value = UInt32(input[index]) << 16
                if rest == 2 { value |= UInt32(input[index + 1]) << 8 }
                output[out] = alphabet[Int(value >> 18 & 63)]
                output[out + 1] = alphabet[Int(value >> 12 & 63)]
                out += 2
                if rest == 2 {
                    output[out] = alphabet[Int(value >> 6 & 63)]
                    out += 1
                } else if pad {
                    output[out] = UInt8(ascii: "=")
                    out += 1
                }
                if pad {
                    output[out] = UInt8(ascii: "=")
                    out += 1
                }
            }
            return out
        }
    }

    // MARK: - Decoding

    /// Decodes standard or URL-safe Base64, with or without padding; ASCII white space anywhere
    /// (line breaks included) is skipped.
    ///
    /// - Throws: `BrokerCryptoError` `.invalidBase64` naming the offending position, or
    ///   `.truncated` when the text stops part-way through a byte.
    package static func decode(_ text: some Collection<UInt8>, what: String = "the text") throws -> [UInt8] {
        var output: [UInt8] = []
        output.reserveCapacity(text.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        var symbols = 0
        var padding = 0
        for (position, byte) in text.enumerated() {
            switch byte {
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\r"), UInt8(ascii: "\t"):
                continue
            case UInt8(ascii: "="):
                padding += 1
                if padding > 2 {
                    throw BrokerCryptoError(.invalidBase64, "\(what) is not valid Base64: too much '=' padding at position \(position)")
                }
                continue
            default:
                break
            }
            let value = decodeTable[Int(byte)]
            guard value != 0xFF else {
                throw BrokerCryptoError(.invalidBase64, "\(what) is not valid Base64: unexpected character at position \(position)")
            }
            guard padding == 0 else {
                throw BrokerCryptoError(.invalidBase64, "\(what) is not valid Base64: data after '=' padding at position \(position)")
            }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            symbols += 1
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        accumulator = 0
        if symbols % 4 == 1 {
            output.resetSecretBytes()
            throw BrokerCryptoError(.truncated, "\(what) is truncated: its Base64 stops part-way through a byte (\(symbols) characters)")
        }
        if padding > 0 && (symbols + padding) % 4 != 0 {
            output.resetSecretBytes()
            throw BrokerCryptoError(.invalidBase64, "\(what) is not valid Base64: wrong amount of '=' padding")
        }
        return output
    }

    /// Decodes a base64url JWK member, naming the member in errors.
    static func decodeMember(_ text: String, member: String) throws -> [UInt8] {
        do {
            return try decode(text.utf8, what: "JWK member \"\(member)\"")
        } catch let error as BrokerCryptoError {
            throw BrokerCryptoError(.invalidJWK, error.reason)
        }
    }
}

extension Array where Element == UInt8 {
    /// Overwrites the bytes with zeros (for buffers that held key material) and empties the array.
    package mutating func resetSecretBytes() {
        withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            // OPENSSL_cleanse: a plain loop of zero stores could be removed by the optimiser.
            OpenSSLCleanse.cleanse(base, buffer.count)
        }
        removeAll()
    }
}
