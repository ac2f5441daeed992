public import BrokerCrypto
public import Foundation

/// A profile's key material, loaded and checked.
public struct SigningCredentials: Sendable {
    /// The private key.
    public var privateKey: RSAPrivateKey
    /// The JWS `kid`: the configured override, else the JWK's own. Nil with a certificate.
    public var kid: String?
    /// The business certificate chain, leaf first, for `x5c`. Nil with a JWK.
    public var certificateChain: [Certificate]?
    /// The algorithm grants are signed with.
    public var algorithm: SigningAlgorithm
    /// When the key was made, where the JWK records it (keys made by `keygen`).
    public var madeAt: Date?

    /// Whole days until the business certificate expires; nil for a JWK.
    public func daysUntilCertificateExpiry(now: Date = Date()) -> Int? {
        certificateChain?.first.map { Int(($0.notAfter.timeIntervalSince(now) / 86_400).rounded(.down)) }
    }

    /// Credentials from loaded key material.
    public init(privateKey: RSAPrivateKey, kid: String?, certificateChain: [Certificate]?, algorithm: SigningAlgorithm, madeAt: Date? = nil) {
        self.privateKey = privateKey
        self.madeAt = madeAt
        self.kid = kid
        self.certificateChain = certificateChain
        self.algorithm = algorithm
    }
}

/// Reads key material from the sources a profile names: a file, an environment variable, a
/// systemd credential, or a certificate with its key.
public struct KeyLoader: Sendable {
    /// The process environment, for `encoded_jwk_env` and `$CREDENTIALS_DIRECTORY`.
    public var environment: [String: String]
    /// The time certificates must be valid at.
    public var now: Date
    /// Where credentials are read from when `$CREDENTIALS_DIRECTORY` is not set: the files the
    /// service unit loads them from (`UnitCredentials`), for `check-config` run by hand.
    public var unitCredentials: [String: String]

    /// A loader reading the current process environment.
    public init(environment: [String: String]? = nil, now: Date = Date(), unitCredentials: [String: String] = [:]) {
        self.environment = environment ?? ProcessInfo.processInfo.environment
        self.now = now
        self.unitCredentials = unitCredentials
    }

    /// Whether credentials come from the unit's files rather than systemd's copies.
    public var readsUnitCredentials: Bool {
        (environment["CREDENTIALS_DIRECTORY"] ?? "").isEmpty && !unitCredentials.isEmpty
    }

    /// Loads and checks the key of `profile`.
    ///
    /// - Throws: `ConfigError` with the key path of the source (e.g.
    ///   `profiles.notifications.key.encoded_jwk_file`) and what is wrong.
    public func load(_ profile: Profile, file: String) throws -> SigningCredentials {
        let keyPath = "profiles.\(profile.name).key"
        let sourcePath = "\(keyPath).\(profile.keySource.configKey)"
        switch profile.keySource {
        case .certificate(let certificateFile, let privateKeyFile):
            let (key, chain) = try loadCertificateKey(certificateFile: certificateFile, privateKeyFile: privateKeyFile, file: file, keyPath: keyPath)
            return SigningCredentials(privateKey: key, kid: nil, certificateChain: chain, algorithm: profile.algorithm ?? .rs256)
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
                    ? "" : ", and \(UnitCredentials.unit) loads no credential named \(name) (it loads \(unitCredentials.keys.sorted().joined(separator: ", ")))"
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
    public func load(_ settings: PlatformAccessTokenSettings, file: String) throws -> (key: RSAPrivateKey, chain: [Certificate]) {
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

    private func credentials(fromEncodedJwk text: [UInt8], profile: Profile, file: String, keyPath: String) throws -> SigningCredentials {
        do {
            let jwk = try JWK.parseEncoded(text, kid: profile.kid)
            let key = try RSAPrivateKey(jwk: jwk)
            if let use = jwk.use, use != "sig" {
                throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "the JWK is marked \"use\": \"\(use)\"; grants need a signing key (\"sig\")")
            }
            let jwkAlgorithm = try jwk.alg.map { alg in
                do { return try SigningAlgorithm(name: alg) } catch {
                    throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "the JWK is marked \"alg\": \"\(alg)\"; grants need RS256, RS384 or RS512")
                }
            }
            if let configured = profile.algorithm, let jwkAlgorithm, configured != jwkAlgorithm {
                throw ConfigError(
                    .invalidKey, file: file, keyPath: "profiles.\(profile.name).algorithm",
                    "algorithm is \(configured) but the JWK is marked for \(jwkAlgorithm); make them agree")
            }
            guard let kid = profile.kid ?? jwk.kid, !kid.isEmpty else {
                throw ConfigError(
                    .invalidKey, file: file, keyPath: keyPath,
                    "the JWK has no kid, and Maskinporten finds the key by kid: set key.kid to the key id registered on the integration")
            }
            return SigningCredentials(
                privateKey: key, kid: kid, certificateChain: nil, algorithm: profile.algorithm ?? jwkAlgorithm ?? .rs256,
                madeAt: jwk.iat.map { Date(timeIntervalSince1970: TimeInterval($0)) })
        } catch let error as BrokerCryptoError {
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, error.reason, cryptoCode: error.code)
        }
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
                    throw fail(.invalidCertificate, "the certificate \(certificate.subject) expired on \(certificate.notAfter.formatted(.iso8601))")
                }
                if certificate.notBefore > now {
                    throw fail(.invalidCertificate, "the certificate \(certificate.subject) is not valid before \(certificate.notBefore.formatted(.iso8601))")
                }
            }
            return chain
        } catch let error as BrokerCryptoError {
            throw fail(error.code, error.reason)
        }
    }

    // MARK: - Files

    /// Reads a file holding a private key, refusing it (as ssh does) when group or others may
    /// read it.
    private func readSecretFile(_ path: String, file: String, keyPath: String) throws -> [UInt8] {
        try readFile(path, file: file, keyPath: keyPath, checkMode: true)
    }

    private func readFile(_ path: String, file: String, keyPath: String, checkMode: Bool) throws -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno == ENOENT ? "does not exist" : "cannot be read: \(String(cString: strerror(errno)))"
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) \(reason)")
        }
        guard info.st_mode & S_IFMT == S_IFREG else {
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) is not a regular file")
        }
        if checkMode && info.st_mode & 0o077 != 0 {
            let mode = String(info.st_mode & 0o777, radix: 8)
            throw ConfigError(
                .keyPermissions, file: file, keyPath: keyPath,
                "\(path) holds a private key but is accessible by group or others (mode 0\(mode)); run: chmod 600 \(path)")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) cannot be opened for reading (permissions?)")
        }
        defer { try? handle.close() }
        let data = (try? handle.readToEnd()) ?? Data()
        guard data.count <= 1 << 20 else {
            throw ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(path) is larger than 1 MiB; that is no key file")
        }
        return Array(data)
    }
}
