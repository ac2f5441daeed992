package import Foundation

/// A key made by the `openssl` command-line tool for one test run, with its JWK built here from
/// OpenSSL's own text dump, independently of the code under test. No key is ever committed.
package struct TestKey: Sendable {
    /// The directory holding the key files; it lives as long as the key.
    package let directory: TemporaryDirectory
    /// PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), as `openssl genpkey` writes it.
    package let pkcs8Path: String
    /// PKCS#1 PEM (`-----BEGIN RSA PRIVATE KEY-----`); nil for non-RSA keys.
    package let pkcs1Path: String?
    /// The public key in PEM, for `openssl dgst -verify`.
    package let publicPath: String
    /// Key parts as unsigned big-endian bytes, by JWK member name (RSA: n, e, d, p, q, dp, dq, qi;
    /// EC: d, x, y).
    package let parts: [String: [UInt8]]
    /// The `kty` of the JWK (`RSA` or `EC`).
    package let kty: String

    /// A fresh RSA key of `bits` bits, made on a thread of its own: `openssl genpkey` may take seconds on a loaded
    /// machine, and waiting for it on Swift's cooperative pool (two threads on a two-core
    /// machine) stalls every other test in the process, which then miss their own deadlines.
    package static func generate(bits: Int = 2048) async throws -> TestKey {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try TestKey.rsa(bits: bits) }) }
        }
    }

    /// A fresh RSA key of `bits` bits, made on the calling thread: for threads that are not the
    /// cooperative pool's (`generate`, `SharedKeys`).
    package static func rsa(bits: Int = 2048) throws -> TestKey {
        let directory = try TemporaryDirectory(prefix: "key")
        let pkcs8 = directory.path("key.pem")
        try Command.opensslBlocking("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)", "-out", pkcs8)
        let pkcs1 = directory.path("key.pkcs1.pem")
        try Command.opensslBlocking("pkey", "-in", pkcs8, "-out", pkcs1, "-traditional")
        let pub = directory.path("public.pem")
        try Command.opensslBlocking("pkey", "-in", pkcs8, "-pubout", "-out", pub)
        let text = try Command.opensslBlocking("pkey", "-in", pkcs8, "-text", "-noout").output
        let dump = parseDump(text)
        let names = [
            "modulus": "n", "privateExponent": "d", "prime1": "p", "prime2": "q",
            "exponent1": "dp", "exponent2": "dq", "coefficient": "qi",
        ]
        var parts: [String: [UInt8]] = [:]
        for (section, member) in names {
            guard let bytes = dump[section] else { throw TestSupportError("openssl's dump lacks \(section)") }
            parts[member] = bytes
        }
        guard let exponentLine = text.split(separator: "\n").first(where: { $0.hasPrefix("publicExponent:") }),
            let open = exponentLine.firstIndex(of: "("),
            let value = UInt64(exponentLine[exponentLine.index(open, offsetBy: 3)...].dropLast(), radix: 16)
        else {
            throw TestSupportError("openssl's dump lacks publicExponent")
        }
        parts["e"] = bigEndian(value)
        return TestKey(directory: directory, pkcs8Path: pkcs8, pkcs1Path: pkcs1, publicPath: pub, parts: parts, kty: "RSA")
    }

    /// A fresh P-256 EC key (for the "not an RSA key" errors).
    package static func ec() throws -> TestKey {
        let directory = try TemporaryDirectory(prefix: "key")
        let pkcs8 = directory.path("key.pem")
        try Command.opensslBlocking("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pkcs8)
        let pub = directory.path("public.pem")
        try Command.opensslBlocking("pkey", "-in", pkcs8, "-pubout", "-out", pub)
        let dump = parseDump(try Command.opensslBlocking("pkey", "-in", pkcs8, "-text", "-noout").output)
        guard let priv = dump["priv"], let point = dump["pub"], point.count == 65 else {
            throw TestSupportError("unexpected EC dump")
        }
        let parts = ["d": [UInt8](repeating: 0, count: 32 - priv.count) + priv, "x": Array(point[1...32]), "y": Array(point[33...64])]
        return TestKey(directory: directory, pkcs8Path: pkcs8, pkcs1Path: nil, publicPath: pub, parts: parts, kty: "EC")
    }

    // MARK: - JWK forms

    /// The JWK members as base64url strings, with `kty` and, when given, `kid`, `alg` and `use`.
    package func jwkMembers(kid: String? = "test-kid", alg: String? = "RS256") -> [String: String] {
        var members = parts.mapValues(Self.base64url)
        members["kty"] = kty
        if kty == "EC" { members["crv"] = "P-256" }
        if let kid { members["kid"] = kid }
        if let alg, kty == "RSA" { members["alg"] = alg }
        members["use"] = "sig"
        return members
    }

    /// The JWK as JSON text.
    package func jwkJSON(kid: String? = "test-kid", alg: String? = "RS256", dropping: Set<String> = [], replacing: [String: String] = [:]) -> String {
        var members = jwkMembers(kid: kid, alg: alg)
        for name in dropping { members.removeValue(forKey: name) }
        members.merge(replacing) { $1 }
        return Self.json(members)
    }

    /// The EncodedJwk as Digdir's tools and most generators give it: standard Base64 of the JWK.
    package func encodedJwk(kid: String? = "test-kid", alg: String? = "RS256") -> String {
        Data(jwkJSON(kid: kid, alg: alg).utf8).base64EncodedString()
    }

    /// Renders a flat string map as a JSON object.
    package static func json(_ members: [String: String]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: members, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    /// base64url without padding.
    package static func base64url(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    // MARK: - Verifying with openssl

    /// Verifies `signature` over `message` with `openssl dgst -verify` and this key's public PEM.
    /// Returns openssl's verdict line; throws when openssl says the signature is bad.
    @discardableResult
    package func opensslVerify(message: Data, signature: Data, digest: String) async throws -> String {
        let scratch = try TemporaryDirectory(prefix: "verify")
        let messagePath = try scratch.write("message", message)
        let signaturePath = try scratch.write("signature", signature)
        let result = try await Command.run("openssl", ["dgst", "-\(digest)", "-verify", publicPath, "-signature", signaturePath, messagePath])
        guard result.status == 0 else {
            throw TestSupportError("openssl dgst -verify refused the signature: \(result.output) \(result.errorOutput)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Verifies a compact JWS with openssl, using the digest its `alg` names.
    @discardableResult
    package func opensslVerify(jws: String) async throws -> String {
        let pieces = jws.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard pieces.count == 3 else { throw TestSupportError("not a compact JWS") }
        let header = try JSONSerialization.jsonObject(with: Self.decodeBase64url(pieces[0])) as? [String: Any]
        guard let alg = header?["alg"] as? String, alg.hasPrefix("RS") else { throw TestSupportError("no RS alg in header") }
        return try await opensslVerify(
            message: Data("\(pieces[0]).\(pieces[1])".utf8),
            signature: Self.decodeBase64url(pieces[2]),
            digest: "sha" + alg.dropFirst(2)
        )
    }

    /// Decodes base64url with or without padding.
    package static func decodeBase64url(_ text: String) throws -> Data {
        var standard = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while standard.count % 4 != 0 { standard += "=" }
        guard let data = Data(base64Encoded: standard) else { throw TestSupportError("bad base64url") }
        return data
    }

    // MARK: - Parsing openssl's dump

    /// Sections of `openssl pkey -text` output: a name line ending in `:` followed by indented
    /// colon-separated hex.
    private static func parseDump(_ text: String) -> [String: [UInt8]] {
        var sections: [String: [UInt8]] = [:]
        var current: String?
        for line in text.split(separator: "\n") {
            if line.first == " " {
                guard let current else { continue }
                let hex = line.filter { $0.isHexDigit }
                var bytes: [UInt8] = []
                var index = hex.startIndex
                while index < hex.endIndex {
                    let next = hex.index(index, offsetBy: 2)
                    bytes.append(UInt8(hex[index..<next], radix: 16)!)
                    index = next
                }
                sections[current, default: []].append(contentsOf: bytes)
            } else if line.hasSuffix(":") {
                current = String(line.dropLast())
            } else {
                current = nil
            }
        }
        // OpenSSL prints a leading 00 when the top bit is set; JWK members carry no sign byte.
        return sections.mapValues { Array($0.drop { $0 == 0 }) }
    }

    private static func bigEndian(_ value: UInt64) -> [UInt8] {
        var bytes: [UInt8] = []
        var rest = value
        while rest > 0 {
            bytes.insert(UInt8(rest & 0xFF), at: 0)
            rest >>= 8
        }
        return bytes
    }
}
