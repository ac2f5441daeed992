import BrokerCrypto
import FoundationEssentials

extension BrokerConfiguration {
    /// Every key and certificate file the configuration reads: what is watched, so that a new
    /// key takes effect without a signal. Keys from the environment or a systemd credential are
    /// not here: those are fixed for the process's life (a credential is a copy made at start).
    package var keyFiles: [String] {
        filesRead.filter(\.isKeyMaterial).map(\.path).reduce(into: []) { unique, file in if !unique.contains(file) { unique.append(file) } }
    }

    /// A file the daemon reads itself, by the key path that names it.
    package struct FileRead: Sendable {
        /// Where the configuration names it (empty for the configuration file).
        package var keyPath: String
        /// The file.
        package var path: String
        /// A key or certificate file, watched for changes (not the configuration or a trust file).
        package var isKeyMaterial: Bool
        /// An EncodedJwk, which could come in as a systemd credential instead.
        package var couldBeCredential: Bool
    }

    /// Every file the daemon reads itself, as its own user: the configuration, key and
    /// certificate files, trust files. Not a credential's file: systemd reads that, as root.
    package var filesRead: [FileRead] {
        var files = [FileRead(keyPath: "", path: file, isKeyMaterial: false, couldBeCredential: false)]
        func key(_ keyPath: String, _ path: String, credential: Bool = false) -> FileRead {
            FileRead(keyPath: keyPath, path: path, isKeyMaterial: true, couldBeCredential: credential)
        }
        for profile in profiles {
            let single = "profiles.\(profile.name).key"
            for (index, source) in profile.keySource.sources.enumerated() {
                let keyPath = profile.keySource.configKey == "keys" ? "profiles.\(profile.name).keys[\(index)]" : single
                switch source {
                case .encodedJwkFile(let path): files.append(key("\(keyPath).encoded_jwk_file", path, credential: true))
                case .certificate(let certificateFile, let privateKeyFile):
                    files += [key("\(keyPath).certificate_file", certificateFile), key("\(keyPath).private_key_file", privateKeyFile)]
                case .provider(_, let uri, _) where uri.hasPrefix("file:"):
                    // A TPM-wrapped key: of no use without this machine's TPM, but kept as close.
                    files.append(key("\(keyPath).uri", String(uri.dropFirst("file:".count))))
                case .encodedJwkEnvironment, .encodedJwkCredential, .provider, .several: break
                }
            }
        }
        for settings in platformAccessTokens {
            let keyPath = "platform_access_tokens.\(settings.name)"
            files += [key("\(keyPath).certificate_file", settings.certificateFile), key("\(keyPath).private_key_file", settings.privateKeyFile)]
        }
        for environment in environments.values.sorted(by: { $0.name < $1.name }) {
            if let caFile = environment.caFile {
                files.append(FileRead(keyPath: "environments.\(environment.name).ca_file", path: caFile, isKeyMaterial: false, couldBeCredential: false))
            }
        }
        return files
    }
}

/// What a set of files holds, as digests: compared before and after a directory event, it says
/// whether a file the daemon reads really changed (a directory event is often about another
/// file, or a write that left the same bytes). Only digests are kept: key material is held in
/// one place, the loaded key.
package struct KeyFileContents: Sendable, Equatable {
    /// Each file's SHA-256, or why it could not be read.
    package let digests: [String: String]

    /// Reads every file in `paths` now.
    package init(paths: [String]) {
        var digests: [String: String] = [:]
        for path in paths {
            // Following symlinks, as loading does: a swapped link changes what is read.
            if var bytes = FileManager.default.contents(atPath: path).map(Array.init) {
                digests[path] = Base64.standardEncoded(Digest.sha256(bytes))
                bytes.resetSecretBytes()
            } else {
                digests[path] = "unreadable"
            }
        }
        self.digests = digests
    }

    /// The files whose contents differ from `earlier`'s.
    package func changed(since earlier: KeyFileContents) -> [String] {
        digests.keys.filter { digests[$0] != earlier.digests[$0] }.sorted()
    }
}
