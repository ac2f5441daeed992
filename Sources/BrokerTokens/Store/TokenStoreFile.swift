package import BrokerConfig
import BrokerCrypto

/// One token as the file descriptor store keeps it through a restart.
package struct StoredToken: Sendable, Equatable {
    /// The profile's name.
    package var profile: String
    /// The delegation variant (`.base` for the profile's own token).
    package var variant: TokenVariant
    /// SHA-256 of what decides the profile's tokens (`TokenBroker.storeIdentity`): a token is
    /// put back only into a profile that would fetch the same token.
    package var identity: [UInt8]
    package var kind: TokenKind
    package var scope: String
    /// The token. It never leaves memory: the store is a sealed memfd in systemd's keeping.
    package var value: String
    /// Wall-clock expiry and time obtained, in milliseconds since 1970.
    package var expiresAtMilliseconds: Int64
    package var obtainedAtMilliseconds: Int64

    package init(
        profile: String, variant: TokenVariant, identity: [UInt8], kind: TokenKind, scope: String, value: String, expiresAtMilliseconds: Int64,
        obtainedAtMilliseconds: Int64
    ) {
        self.profile = profile
        self.variant = variant
        self.identity = identity
        self.kind = kind
        self.scope = scope
        self.value = value
        self.expiresAtMilliseconds = expiresAtMilliseconds
        self.obtainedAtMilliseconds = obtainedAtMilliseconds
    }
}

/// The bytes of the `tokens` memfd: a magic and version, the entries, and a SHA-256 of all that
/// came before it. Binary and length-prefixed, read with every length checked against what is
/// left, so that any bytes at all (a truncated file, another program's, garbage) are refused with
/// a reason rather than read past their end.
///
///     "MPBTOKENS" version:u8 count:u32
///     entry*: profile:str16 systemUserOrg:str16 externalRef:str16 consumerOrg:str16
///             identity:32 bytes kind:u8 scope:str16 token:str32 expiresAt:i64 obtainedAt:i64
///     sha256 of everything before: 32 bytes
///
/// Integers are little-endian; `str16`/`str32` are a u16/u32 length and UTF-8.
package enum TokenStoreFile {
    static let magic = Array("MPBTOKENS".utf8)
    /// The format written; a file of any other version is refused (and the daemon fetches anew).
    package static let version: UInt8 = 1
    /// The largest file read: 1,000 profiles' tokens are about 2 MB.
    package static let maximumBytes = 16 * 1024 * 1024

    /// Why a file was refused.
    package struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        package let reason: String
        package var description: String { reason }
    }

    /// The file holding `tokens`.
    package static func encode(_ tokens: [StoredToken]) -> [UInt8] {
        var bytes = magic
        bytes.append(version)
        append(UInt32(tokens.count), to: &bytes)
        for token in tokens {
            appendString(token.profile, width: 2, to: &bytes)
            appendString(token.variant.systemUserOrg?.digits ?? "", width: 2, to: &bytes)
            appendString(token.variant.systemUserExternalRef ?? "", width: 2, to: &bytes)
            appendString(token.variant.consumerOrg?.digits ?? "", width: 2, to: &bytes)
            bytes.append(contentsOf: token.identity.count == 32 ? token.identity : [UInt8](repeating: 0, count: 32))
            bytes.append(token.kind == .altinn ? 1 : 0)
            appendString(token.scope, width: 2, to: &bytes)
            appendString(token.value, width: 4, to: &bytes)
            append(UInt64(bitPattern: token.expiresAtMilliseconds), to: &bytes)
            append(UInt64(bitPattern: token.obtainedAtMilliseconds), to: &bytes)
        }
        bytes.append(contentsOf: Digest.sha256(bytes))
        return bytes
    }

    /// The tokens in `bytes`, or why they are not a store file of this version.
    package static func decode(_ bytes: [UInt8]) -> Result<[StoredToken], Refusal> {
        guard bytes.count >= magic.count + 1 + 4 + 32 else { return .failure(Refusal(reason: "it is \(bytes.count) bytes, shorter than any store file")) }
        guard bytes.starts(with: magic) else { return .failure(Refusal(reason: "it does not start as a store file")) }
        guard bytes[magic.count] == version else {
            return .failure(Refusal(reason: "it is of version \(bytes[magic.count]), not \(version) (written by another version of the broker)"))
        }
        let body = bytes[..<(bytes.count - 32)]
        guard Digest.sha256(body) == Array(bytes[(bytes.count - 32)...]) else {
            return .failure(Refusal(reason: "its checksum does not match its contents (truncated or changed)"))
        }
        var reader = Reader(bytes: Array(body), offset: magic.count + 1)
        do throws(Refusal) {
            let count = try reader.integer(UInt32.self)
            var tokens: [StoredToken] = []
            for _ in 0..<count {
                let profile = try reader.string(width: 2)
                let systemUserOrg = try reader.organisation()
                let externalRef = try reader.string(width: 2)
                let consumerOrg = try reader.organisation()
                let identity = try reader.bytes(32)
                let kind: TokenKind = try reader.byte() == 1 ? .altinn : .maskinporten
                let scope = try reader.string(width: 2)
                let value = try reader.string(width: 4)
                let expiresAt = Int64(bitPattern: try reader.integer(UInt64.self))
                let obtainedAt = Int64(bitPattern: try reader.integer(UInt64.self))
                let variant = TokenVariant(
                    systemUserOrg: systemUserOrg, systemUserExternalRef: externalRef.isEmpty ? nil : externalRef, consumerOrg: consumerOrg)
                tokens.append(
                    StoredToken(
                        profile: profile, variant: variant, identity: identity, kind: kind, scope: scope, value: value, expiresAtMilliseconds: expiresAt,
                        obtainedAtMilliseconds: obtainedAt))
            }
            guard reader.offset == reader.bytes.count else { throw Refusal(reason: "it has \(reader.bytes.count - reader.offset) bytes after its last entry") }
            return .success(tokens)
        } catch {
            return .failure(error)
        }
    }

    private static func append<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private static func appendString(_ text: String, width: Int, to bytes: inout [UInt8]) {
        let utf8 = Array(text.utf8)
        if width == 2 {
            let count = min(utf8.count, Int(UInt16.max))
            append(UInt16(count), to: &bytes)
            bytes.append(contentsOf: utf8.prefix(count))
        } else {
            append(UInt32(utf8.count), to: &bytes)
            bytes.append(contentsOf: utf8)
        }
    }

    /// Reads what `encode` wrote, every length checked against what is left.
    private struct Reader {
        let bytes: [UInt8]
        var offset: Int

        mutating func bytes(_ count: Int) throws(Refusal) -> [UInt8] {
            guard count >= 0, bytes.count - offset >= count else { throw Refusal(reason: "it ends inside an entry (truncated)") }
            defer { offset += count }
            return Array(bytes[offset..<(offset + count)])
        }

        mutating func byte() throws(Refusal) -> UInt8 {
            try bytes(1)[0]
        }

        mutating func integer<T: FixedWidthInteger>(_ type: T.Type) throws(Refusal) -> T {
            let raw = try bytes(MemoryLayout<T>.size)
            var value: T = 0
            for (index, byte) in raw.enumerated() { value |= T(byte) << (8 * index) }
            return value
        }

        mutating func string(width: Int) throws(Refusal) -> String {
            let count = width == 2 ? Int(try integer(UInt16.self)) : Int(try integer(UInt32.self))
            let raw = try bytes(count)
            guard let text = String(validating: raw, as: UTF8.self) else { throw Refusal(reason: "it holds text that is not UTF-8") }
            return text
        }

        mutating func organisation() throws(Refusal) -> OrganisationNumber? {
            let text = try string(width: 2)
            guard !text.isEmpty else { return nil }
            do {
                return try OrganisationNumber(text)
            } catch {
                throw Refusal(reason: "it holds a variant whose organisation number is not one")
            }
        }
    }
}
