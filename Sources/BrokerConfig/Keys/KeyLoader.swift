package import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One key a profile may sign with: a key of its JWK Set.
package struct SigningKey: Sendable {
    /// The private key.
    package var privateKey: RSAPrivateKey
    /// The JWS `kid`.
    package var kid: String
    /// The algorithm its grants use.
    package var algorithm: SigningAlgorithm
    /// When it was made, where its JWK records it (keys made by `keygen`).
    package var madeAt: Date?

    /// A key.
    package init(privateKey: RSAPrivateKey, kid: String, algorithm: SigningAlgorithm, madeAt: Date? = nil) {
        self.privateKey = privateKey
        self.kid = kid
        self.algorithm = algorithm
        self.madeAt = madeAt
    }
}

/// A profile's key material, loaded and checked.
package struct SigningCredentials: Sendable {
    /// The private key.
    package var privateKey: RSAPrivateKey
    /// The JWS `kid`: the configured override, else the JWK's own. Nil with a certificate.
    package var kid: String?
    /// The business certificate chain, leaf first, for `x5c`. Nil with a JWK.
    package var certificateChain: [Certificate]?
    /// The algorithm grants are signed with.
    package var algorithm: SigningAlgorithm
    /// When the key was made, where the JWK records it (keys made by `keygen`).
    package var madeAt: Date?
    /// Every key a JWK Set holds, oldest first: the last is the one above. One key for a
    /// single JWK or `kid:`; none for a business certificate (grants carry `x5c`).
    package var keys: [SigningKey]

    /// Whole days until the business certificate expires; nil for a JWK.
    package func daysUntilCertificateExpiry(now: Date = Date()) -> Int? {
        certificateChain?.first.map { Int(($0.notAfter.timeIntervalSince(now) / 86_400).rounded(.down)) }
    }

    /// Credentials from loaded key material.
    package init(privateKey: RSAPrivateKey, kid: String?, certificateChain: [Certificate]?, algorithm: SigningAlgorithm, madeAt: Date? = nil) {
        self.privateKey = privateKey
        self.madeAt = madeAt
        keys = kid.map { [SigningKey(privateKey: privateKey, kid: $0, algorithm: algorithm, madeAt: madeAt)] } ?? []
        self.kid = kid
        self.certificateChain = certificateChain
        self.algorithm = algorithm
    }

    /// Credentials of a JWK Set's keys, oldest first: the newest is the default.
    package init(keys: [SigningKey]) {
        let newest = keys[keys.count - 1]
        self.init(privateKey: newest.privateKey, kid: newest.kid, certificateChain: nil, algorithm: newest.algorithm, madeAt: newest.madeAt)
        self.keys = keys
    }
}

/// Reads key material from the sources a profile names: a file, an environment variable, a
/// systemd credential, or a certificate with its key.
package struct KeyLoader: Sendable {
    /// The process environment, for `encoded_jwk_env` and `$CREDENTIALS_DIRECTORY`.
    package var environment: [String: String]
    /// The time certificates must be valid at.
    package var now: Date
    /// Where credentials are read from when `$CREDENTIALS_DIRECTORY` is not set: the files the
    /// service unit loads them from (`ServiceUnit`), for `check-config` run by hand.
    package var unitCredentials: [String: String]
    /// Keys already made in this pass over a configuration, when set (`sharingKeys()`).
    private var made: MadeKeyTable?

    /// Keys made in one pass, by their JWK.
    private final class MadeKeyTable: Sendable {
        let keys = Mutex<[JWK: RSAPrivateKey]>([:])
    }

    /// A loader reading the current process environment.
    package init(environment: [String: String]? = nil, now: Date = Date(), unitCredentials: [String: String] = [:]) {
        self.environment = environment ?? ProcessEnvironment.all
        self.now = now
        self.unitCredentials = unitCredentials
    }

    /// This loader, with profiles naming the same key (an organisation's profiles for one
    /// Maskinporten client, each with its own scopes) given one key: one in OpenSSL, whose
    /// Montgomery and blinding contexts are made once, not a copy of about 5 KiB per profile.
    /// For one pass over a configuration: a loader kept longer would keep keys replaced since.
    package func sharingKeys() -> KeyLoader {
        var loader = self
        loader.made = MadeKeyTable()
        return loader
    }

    /// Whether credentials come from the unit's files rather than systemd's copies.
    package var readsUnitCredentials: Bool {
        (environment["CREDENTIALS_DIRECTORY"] ?? "").isEmpty && !unitCredentials.isEmpty
    }

    /// Loads and checks the key of `profile`.
    ///
    /// - Throws: `ConfigError` with the key path of the source (e.g.
    ///   `profiles.notifications.key.encoded_jwk_file`) and what is wrong.
    package func load(_ profile: Profile, file: String) throws -> SigningCredentials {
        let configured = try loadConfigured(profile, file: file)
        // Keys rotation made follow the configured ones: the newest of them is the newest key.
        guard let rotation = profile.rotation else { return configured }
        let keyPath = "profiles.\(profile.name).rotation"
        let made: [SigningKey]
        if let tpm = rotation.tpm {
            do {
                made = try MadeKeys(rotation).tpmKeyFiles().map { made in
                    SigningKey(
                        privateKey: try RSAPrivateKey(uri: "file:\(made.path)", provider: "tpm2", tcti: tpm.tcti), kid: made.kid,
                        algorithm: profile.algorithm ?? .rs256, madeAt: made.madeAt)
                }
            } catch let error as BrokerCryptoError {
                throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "a key rotation made in the TPM: \(error.reason)")
            } catch let error as EncodedJwkFile.Failure {
                throw ConfigError(.invalidKey, file: file, keyPath: keyPath, error.description)
            }
        } else {
            guard FileManager.default.fileExists(atPath: rotation.keysFile) else { return configured }
            var text = try readSecretFile(rotation.keysFile, file: file, keyPath: keyPath)
            defer { text.resetSecretBytes() }
            made = try credentials(fromEncodedJwk: text, profile: profile, file: file, keyPath: keyPath).keys
        }
        let added = made.filter { key in !configured.keys.contains { $0.kid == key.kid } }
        return added.isEmpty ? configured : SigningCredentials(keys: configured.keys + added)
    }

    /// The key from the source the profile names; for `keys:`, every entry's keys in the
    /// list's order, oldest first, as one key set.
    private func loadConfigured(_ profile: Profile, file: String, keyPath: String? = nil) throws -> SigningCredentials {
        let keyPath = keyPath ?? "profiles.\(profile.name).key"
        let sourcePath = "\(keyPath).\(profile.keySource.configKey)"
        switch profile.keySource {
        case .several(let entries):
            var keys: [SigningKey] = []
            for (index, entry) in entries.enumerated() {
                var part = profile
                part.keySource = entry.source
                part.kid = entry.kid
                keys += try loadConfigured(part, file: file, keyPath: "profiles.\(profile.name).keys[\(index)]").keys
            }
            let listPath = "profiles.\(profile.name).keys"
            guard keys.count <= EncodedJwkFile.maximumKeys else {
                throw ConfigError(
                    .invalidKey, file: file, keyPath: listPath,
                    "the keys hold \(keys.count) keys together; Maskinporten holds at most \(EncodedJwkFile.maximumKeys) per client: remove the oldest")
            }
            if let repeated = Dictionary(grouping: keys, by: \.kid).first(where: { $0.value.count > 1 })?.key {
                throw ConfigError(.invalidKey, file: file, keyPath: listPath, "two of the keys have kid \(repeated); every key needs its own")
            }
            return SigningCredentials(keys: keys)
        case .certificate(let certificateFile, let privateKeyFile):
            let (key, chain) = try loadCertificateKey(certificateFile: certificateFile, privateKeyFile: privateKeyFile, file: file, keyPath: keyPath)
            return SigningCredentials(privateKey: key, kid: nil, certificateChain: chain, algorithm: profile.algorithm ?? .rs256)
        case .provider(let name, let uri, let tcti):
            let key: RSAPrivateKey
            do {
                key = try RSAPrivateKey(uri: uri, provider: name, tcti: tcti)
            } catch let error as BrokerCryptoError {
                throw ConfigError(.invalidKey, file: file, keyPath: "\(keyPath).uri", error.reason)
            }
            // Named as Maskinporten will know it: the configured kid, else the RFC 7638 thumbprint
            // of its public half (read from the TPM).
            let kid = try profile.kid ?? key.publicKey.jwk().thumbprint
            return SigningCredentials(privateKey: key, kid: kid, certificateChain: nil, algorithm: profile.algorithm ?? .rs256)
        case .encodedJwkFile(let path):
            var text = try readSecretFile(path, file: file, keyPath: sourcePath)
            defer { text.resetSecretBytes() }
            return try credentials(fromEncodedJwk: text, profile: profile, file: file, keyPath: sourcePath)
        case .encodedJwkEnvironment(let variable):
            guard let value = environment[variable], !value.isEmpty else {
                throw ConfigError(.invalidKey, file: file, keyPath: sourcePath, "the environment variable \(variable) is not set or empty")
            }
            var text = Array(value.utf8)
            defer { text.resetSecretBytes() }
            return try credentials(fromEncodedJwk: text, profile: profile, file: file, keyPath: sourcePath)
        case .encodedJwkCredential(let name):
            guard let directory = environment["CREDENTIALS_DIRECTORY"], !directory.isEmpty else {
                // check-config by hand: the file the unit will load, checked as a key file.
                if let path = unitCredentials[name] {
                    var text = try readSecretFile(path, file: file, keyPath: sourcePath)
                    defer { text.resetSecretBytes() }
                    return try credentials(fromEncodedJwk: text, profile: profile, file: file, keyPath: sourcePath)
                }
                let unitNote =
                    unitCredentials.isEmpty
                    ? "" : ", and \(ServiceUnit.name) loads no credential named \(name) (it loads \(unitCredentials.keys.sorted().joined(separator: ", ")))"
                throw ConfigError(
                    .invalidKey, file: file, keyPath: sourcePath,
                    "$CREDENTIALS_DIRECTORY is not set\(unitNote): systemd sets it for units with LoadCredential=\(name):PATH; outside systemd use encoded_jwk_file"
                )
            }
            // systemd makes the credentials directory private to the service: no mode check.
            var text = try readFile("\(directory)/\(name)", file: file, keyPath: sourcePath, checkMode: false)
            defer { text.resetSecretBytes() }
            return try credentials(fromEncodedJwk: text, profile: profile, file: file, keyPath: sourcePath)
        }
    }

    /// Loads the key and chain of a Platform Access Token issuer.
    package func load(_ settings: PlatformAccessTokenSettings, file: String) throws -> (key: RSAPrivateKey, chain: [Certificate]) {
        try loadCertificateKey(
            certificateFile: settings.certificateFile, privateKeyFile: settings.privateKeyFile,
            file: file, keyPath: "platform_access_tokens.\(settings.name)"
        )
    }

    /// A PEM private key and the certificate chain that belongs to it.
    private func loadCertificateKey(certificateFile: String, privateKeyFile: String, file: String, keyPath: String) throws -> (
        key: RSAPrivateKey, chain: [Certificate]
    ) {
        var pem = try readSecretFile(privateKeyFile, file: file, keyPath: "\(keyPath).private_key_file")
        defer { pem.resetSecretBytes() }
        let key: RSAPrivateKey
        do { key = try RSAPrivateKey(pem: pem) } catch let error as BrokerCryptoError {
            throw ConfigError(.invalidKey, file: file, keyPath: "\(keyPath).private_key_file", error.reason, cryptoCode: error.code)
        }
        let chain = try loadChain(certificateFile, matching: key, file: file, keyPath: "\(keyPath).certificate_file")
        return (key, chain)
    }

    /// The key of an EncodedJwk: the one `kid:` names, else every key of the set (oldest
    /// first), each checked as a signing key.
    private func credentials(fromEncodedJwk text: [UInt8], profile: Profile, file: String, keyPath: String) throws -> SigningCredentials {
        do {
            let jwks = try profile.kid.map { [try JWK.parseEncoded(text, kid: $0)] } ?? JWK.parseEncodedKeys(text)
            guard !jwks.isEmpty else { throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "the JWK Set holds no keys", cryptoCode: .keyNotFound) }
            guard jwks.count <= EncodedJwkFile.maximumKeys else {
                throw ConfigError(
                    .invalidKey, file: file, keyPath: keyPath,
                    "the JWK Set holds \(jwks.count) keys; Maskinporten holds at most \(EncodedJwkFile.maximumKeys) per client: remove the oldest")
            }
            let keys = try jwks.map { try signingKey($0, of: jwks.count, profile: profile, file: file, keyPath: keyPath) }
            if let repeated = Dictionary(grouping: keys, by: \.kid).first(where: { $0.value.count > 1 })?.key {
                throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "the JWK Set holds two keys with kid \(repeated); every key needs its own")
            }
            return keys.count == 1
                ? SigningCredentials(
                    privateKey: keys[0].privateKey, kid: keys[0].kid, certificateChain: nil, algorithm: keys[0].algorithm, madeAt: keys[0].madeAt)
                : SigningCredentials(keys: keys)
        } catch let error as BrokerCryptoError {
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, error.reason, cryptoCode: error.code)
        }
    }

    /// One JWK checked as a grant-signing key. In a set of several, errors name the key.
    private func signingKey(_ jwk: JWK, of count: Int, profile: Profile, file: String, keyPath: String) throws -> SigningKey {
        let which = count > 1 ? "the key \(jwk.kid.map { "with kid \($0)" } ?? "without a kid") in the JWK Set: " : ""
        func fail(_ message: String, at path: String = keyPath) -> ConfigError {
            ConfigError(.invalidKey, file: file, keyPath: path, which + message)
        }
        let key: RSAPrivateKey
        if let known = made?.keys.withLock({ $0[jwk] }) {
            key = known
        } else {
            do { key = try RSAPrivateKey(jwk: jwk) } catch let error as BrokerCryptoError {
                throw ConfigError(.invalidKey, file: file, keyPath: keyPath, which + error.reason, cryptoCode: error.code)
            }
            made?.keys.withLock { $0[jwk] = key }
        }
        if let use = jwk.use, use != "sig" {
            throw fail("the JWK is marked \"use\": \"\(use)\"; grants need a signing key (\"sig\")")
        }
        let jwkAlgorithm = try jwk.alg.map { alg in
            do { return try SigningAlgorithm(name: alg) } catch {
                throw fail("the JWK is marked \"alg\": \"\(alg)\"; grants need RS256, RS384 or RS512")
            }
        }
        if let configured = profile.algorithm, let jwkAlgorithm, configured != jwkAlgorithm {
            throw fail("algorithm is \(configured) but the JWK is marked for \(jwkAlgorithm); make them agree", at: "profiles.\(profile.name).algorithm")
        }
        guard let kid = profile.kid ?? jwk.kid, !kid.isEmpty else {
            throw fail("the JWK has no kid, and Maskinporten finds the key by kid: set key.kid to the key id registered on the integration")
        }
        return SigningKey(
            privateKey: key, kid: kid, algorithm: profile.algorithm ?? jwkAlgorithm ?? .rs256,
            madeAt: jwk.iat.map { Date(timeIntervalSince1970: TimeInterval($0)) })
    }

    /// Reads a certificate chain and checks it against the key: leaf matches, each certificate
    /// issued by the next, all valid now.
    private func loadChain(_ path: String, matching key: RSAPrivateKey, file: String, keyPath: String) throws -> [Certificate] {
        let pem = try readFile(path, file: file, keyPath: keyPath, checkMode: false)
        func fail(_ code: BrokerCryptoError.Code, _ message: String) -> ConfigError {
            ConfigError(.invalidKey, file: file, keyPath: keyPath, message, cryptoCode: code)
        }
        do {
            let chain = try Certificate.chain(pem: pem)
            guard try chain[0].publicKey.matches(key) else {
                throw fail(.certificateKeyMismatch, "the certificate (\(chain[0].subject)) does not belong to the private key in private_key_file")
            }
            for index in chain.indices.dropLast() where !chain[index].isIssued(by: chain[index + 1]) {
                throw fail(
                    .invalidCertificate,
                    "the chain is out of order: certificate \(index + 1) (\(chain[index].subject)) was not issued by certificate \(index + 2) (\(chain[index + 1].subject)); list the leaf first, then each issuer"
                )
            }
            for certificate in chain {
                if certificate.notAfter < now {
                    throw fail(.invalidCertificate, "the certificate \(certificate.subject) expired on \(UTCTimestamp.format(certificate.notAfter))")
                }
                if certificate.notBefore > now {
                    throw fail(.invalidCertificate, "the certificate \(certificate.subject) is not valid before \(UTCTimestamp.format(certificate.notBefore))")
                }
            }
            return chain
        } catch let error as BrokerCryptoError {
            throw fail(error.code, error.reason)
        }
    }

    // MARK: - Files

    /// Reads a file holding a private key, refusing it when others may read it, or its group
    /// may write it. Its group may read it only when root owns it (as PostgreSQL allows for its
    /// keys): `root:maskinporten 0640` on a host, and a Kubernetes Secret's file, which the
    /// kubelet makes `root:<fsGroup> 0440` for a non-root reader.
    private func readSecretFile(_ path: String, file: String, keyPath: String) throws -> [UInt8] {
        try readFile(path, file: file, keyPath: keyPath, checkMode: true)
    }

    /// A file this process may not read, named with its user and the fix, as `check-config`
    /// names it for the service's user.
    static func denied(_ path: String, file: String, keyPath: String) -> ConfigError? {
        let reader = FileReader.current
        guard let denial = reader.denial(reading: path) else { return nil }
        return ConfigError(
            .serviceAccess, file: file, keyPath: keyPath,
            LoadedConfiguration.unreadable(
                path, by: "\(reader.name), the user this runs as", denial: denial, group: Accounts.groupName(of: getegid()) ?? "\(getegid())",
                asCredential: keyPath.hasSuffix(".encoded_jwk_file")))
    }

    private func readFile(_ path: String, file: String, keyPath: String, checkMode: Bool) throws -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == EACCES, let denied = Self.denied(path, file: file, keyPath: keyPath) { throw denied }
            let reason = errno == ENOENT ? "does not exist" : "cannot be read: \(String(cString: strerror(errno)))"
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) \(reason)")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) is not a regular file")
        }
        if checkMode && (info.st_mode & 0o027 != 0 || (info.st_mode & 0o040 != 0 && info.st_uid != 0)) {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw ConfigError(
                .keyPermissions, file: file, keyPath: keyPath,
                "\(path) holds a private key but is accessible by group or others (mode 0\(mode)); run: chmod 600 \(path)")
        }
        let bytes: [UInt8]
        do {
            bytes = try FileContents.read(path, limit: (1 << 20) + 1)
        } catch {
            let reason = String(cString: strerror(error.errno))
            throw Self.denied(path, file: file, keyPath: keyPath)
                ?? ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) cannot be opened for reading: \(reason)")
        }
        guard bytes.count <= 1 << 20 else {
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) is larger than 1 MiB; that is no key file")
        }
        return bytes
    }
}
