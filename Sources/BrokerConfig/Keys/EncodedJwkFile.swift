package import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Makes signing keys and writes them as EncodedJwk files: what `keygen` does, and what key
/// rotation does. A file is written whole or not at all, mode 0600 from its creation
/// (`AtomicFile`), so no reader ever sees half a key and no other user ever could.
package enum EncodedJwkFile {
    /// Maskinporten's limit of keys registered on one client, and so of keys in one file.
    package static let maximumKeys = 5
    /// The key sizes `keygen` makes.
    package static let allowedBits = [2048, 3072, 4096]

    /// Why a key could not be made or written; says what to do.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        /// What went wrong.
        package let description: String

        package init(_ description: String) {
            self.description = description
        }
    }

    /// A new RSA signing key as a private JWK with `kid`, `alg` RS256, `use` sig and the time
    /// it was made. Without `kid`, the kid is the day it was made and the start of the key's
    /// RFC 7638 thumbprint (`2026-11-29-Xy7aBc3d`): unique, and it tells its age at a glance.
    package static func makeKey(bits: Int, kid: String?, now: Date = Date()) throws -> JWK {
        guard allowedBits.contains(bits) else {
            throw Failure("--bits must be 2048, 3072 or 4096 (Maskinporten accepts RSA keys of at least 2048 bits)")
        }
        if let kid { try check(kid: kid) }
        let key = try RSAPrivateKey.generate(bits: bits)
        var jwk = try key.privateJWK(kid: kid, algorithm: .rs256, madeAt: Int(now.timeIntervalSince1970))
        if kid == nil { jwk.kid = defaultKid(jwk, now: now) }
        return jwk
    }

    /// The key in the file at `path`, a key made elsewhere, as the private JWK an EncodedJwk
    /// holds: an RSA private key as PEM (PKCS#8 or PKCS#1, as an earlier integration kept it),
    /// or a private JWK as JSON (or a JWK Set holding one), as JWK generators such as the one
    /// Altinn's guide uses make it. The JWK's own kid and alg are kept unless `kid` is given;
    /// without either, the kid is made as `makeKey` makes it. No creation time is recorded: it
    /// is not known.
    package static func importKey(from path: String, kid: String?, now: Date = Date()) throws -> JWK {
        if let kid { try check(kid: kid) }
        var data = try readSecret(path)
        defer { data.resetSecretBytes() }
        var text = Array(data.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 })
        defer { text.resetSecretBytes() }
        let key: RSAPrivateKey
        var recorded: (kid: String?, algorithm: SigningAlgorithm) = (nil, .rs256)
        do {
            if text.starts(with: Array("-----BEGIN ".utf8)) {
                let label = String(decoding: text.dropFirst(11).prefix(40).prefix { $0 != UInt8(ascii: "-") }, as: UTF8.self)
                if label.hasPrefix("ENCRYPTED") {
                    throw Failure(
                        "\(path) holds an encrypted private key: decrypt it first (openssl pkey -in \(path) -out PLAIN.pem), give PLAIN.pem to --from, then delete it"
                    )
                }
                // A certificate or a public key: named as what it is, as a key source names it.
                if !label.hasSuffix("PRIVATE KEY") { _ = try JWK.parseEncoded(text) }
                key = try RSAPrivateKey(pem: text)
            } else if text.first == UInt8(ascii: "{") || text.first == UInt8(ascii: "[") {
                let jwk = try JWK.parseJSON(text)
                if let use = jwk.use, use != "sig" {
                    throw Failure("\(path) holds a JWK marked \"use\": \"\(use)\"; Maskinporten grants need a signing key (\"sig\")")
                }
                guard jwk.isPrivate else {
                    throw Failure(
                        "\(path) holds a public JWK only (no \"d\"): the broker signs with the private part; give the private JWK the generator made, or make a new pair with keygen --out FILE"
                    )
                }
                key = try RSAPrivateKey(jwk: jwk)
                recorded = (jwk.kid, try jwk.alg.map { try SigningAlgorithm(name: $0) } ?? .rs256)
            } else if (try? JWK.parseEncodedKeys(text)) != nil {
                throw Failure("\(path) is an EncodedJwk already: give it to the profile as it is (key.encoded_jwk_file), or copy it with install -m 0600")
            } else {
                throw Failure(
                    "\(path) is neither a PEM private key nor a JWK: --from takes an RSA private key as PEM (-----BEGIN PRIVATE KEY----- or -----BEGIN RSA PRIVATE KEY-----) or a private JWK as JSON (with \"d\")"
                )
            }
        } catch let error as BrokerCryptoError {
            throw Failure("\(path): \(error.reason)")
        }
        var jwk = try key.privateJWK(kid: kid ?? recorded.kid, algorithm: recorded.algorithm)
        if jwk.kid == nil { jwk.kid = defaultKid(jwk, now: now) }
        return jwk
    }

    /// A key made inside the TPM (OpenSSL's tpm2 provider; `tcti` chooses the TPM), written to
    /// `path` as the TPM-wrapped `TSS2 PRIVATE KEY` with the same rules as a key file (mode 0600,
    /// never over an existing file unless `replacing`): its public JWK, named as `makeKey` names.
    package static func makeTPMKey(bits: Int, kid: String?, tcti: String?, to path: String, replacing: Bool, now: Date = Date()) throws -> JWK {
        guard [2048, 3072].contains(bits) else { throw Failure("--bits must be 2048 or 3072 for a TPM key (what TPMs make)") }
        if let kid { try check(kid: kid) }
        let key: RSAPrivateKey
        let pem: String
        do {
            key = try RSAPrivateKey.generate(provider: "tpm2", bits: bits, tcti: tcti)
            pem = try key.providerPEM()
        } catch let error as BrokerCryptoError {
            throw Failure(error.reason)
        }
        try writeAtomically(Array(pem.utf8), to: path, replacing: replacing)
        var jwk = try key.publicKey.jwk(algorithm: .rs256)
        jwk.kid = kid ?? defaultKid(jwk, now: now)
        return jwk
    }

    /// The day and the start of the key's RFC 7638 thumbprint: `2026-11-29-Xy7aBc3d`.
    static func defaultKid(_ jwk: JWK, now: Date) -> String {
        UTCTimestamp.day(now) + "-" + String((jwk.thumbprint ?? "").prefix(8))
    }

    /// A kid must survive every place it goes: a JWS header, Samarbeidsportalen's form, a log line.
    static func check(kid: String) throws {
        guard !kid.isEmpty, kid.utf8.count <= 100, kid.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "\\" }) else {
            throw Failure("--kid must be 1 to 100 printable ASCII characters without spaces, quotes or backslashes")
        }
    }

    /// The keys in the EncodedJwk file at `path` (a single JWK counts as a set of one).
    package static func readKeys(_ path: String) throws -> [JWK] {
        var data = try readSecret(path)
        defer { data.resetSecretBytes() }
        do {
            return try JWK.parseEncodedKeys(data)
        } catch let error as BrokerCryptoError {
            throw Failure("\(path) is not an EncodedJwk this broker can add to: \(error.reason)")
        }
    }

    /// The keys already in `path` that a new key (with `kid`, if chosen) joins: none when the file
    /// does not exist yet. Checked before a key is made: the set must have room for one more, and
    /// the kid must be new.
    package static func keysToAddTo(_ path: String, kid: String?) throws -> [JWK] {
        guard FileManager.default.fileExists(atPath: path) else { return [] }
        let existing = try readKeys(path)
        guard existing.count < maximumKeys else {
            throw Failure(
                "\(path) already holds \(existing.count) keys, Maskinporten's limit for one client: remove the oldest from the file and from Samarbeidsportalen first"
            )
        }
        if let kid, existing.contains(where: { $0.kid == kid }) {
            throw Failure("\(path) already holds a key with kid \(kid); choose another --kid")
        }
        return existing
    }

    /// `keysToAddTo` for a key already made (an imported one): its kid must be new, and so
    /// must the key itself.
    package static func keysToAddTo(_ path: String, key: JWK) throws -> [JWK] {
        let existing = try keysToAddTo(path, kid: key.kid)
        if let same = existing.first(where: { $0.thumbprint == key.thumbprint }) {
            throw Failure("\(path) already holds this key (kid \(same.kid ?? "-")); there is nothing to add")
        }
        return existing
    }

    /// Writes `keys` to `path` as an EncodedJwk: the JWK itself for one key written as a new
    /// file, a JWK Set otherwise. A new file is never put over an existing one unless
    /// `replacing` is set.
    package static func write(_ keys: [JWK], asSet: Bool, to path: String, replacing: Bool) throws {
        guard keys.count <= maximumKeys else {
            throw Failure("\(path) would hold \(keys.count) keys; Maskinporten holds at most \(maximumKeys) per client: remove the oldest first")
        }
        var json = asSet || keys.count != 1 ? try JWKSet(keys: keys).json() : try JWKSet.json(keys[0])
        defer { json.resetSecretBytes() }
        var text = Array((Base64.standardEncoded(json) + "\n").utf8)
        defer { text.resetSecretBytes() }
        try writeAtomically(text, to: path, replacing: replacing)
    }

    package static func writeAtomically(_ bytes: [UInt8], to path: String, replacing: Bool) throws {
        do {
            try AtomicFile.write(bytes, to: path, replacing: replacing)
        } catch  where error.exists {
            throw Failure("\(path) exists; keygen never overwrites a key: choose another --out, add the key to it with --add-to, or replace it with --force")
        } catch {
            throw Failure(error.description)
        }
    }

    /// The bytes of a key file; the caller wipes them.
    private static func readSecret(_ path: String) throws -> [UInt8] {
        do {
            return try FileContents.read(path)
        } catch {
            throw Failure("\(path) cannot be read: \(error.errno == ENOENT ? "it does not exist" : String(cString: strerror(error.errno)))")
        }
    }
}
