import BrokerCrypto
import Foundation

extension BrokerConfiguration {
    /// Every key and certificate file the configuration reads: what is watched, so that a new
    /// key takes effect without a signal. Keys from the environment or a systemd credential are
    /// not here: those are fixed for the process's life (a credential is a copy made at start).
    public var keyFiles: [String] {
        var files: [String] = []
        for profile in profiles {
            switch profile.keySource {
            case .encodedJwkFile(let path): files.append(path)
            case .certificate(let certificateFile, let privateKeyFile): files += [certificateFile, privateKeyFile]
            case .encodedJwkEnvironment, .encodedJwkCredential: break
            }
        }
        for settings in platformAccessTokens { files += [settings.certificateFile, settings.privateKeyFile] }
        return files.reduce(into: []) { unique, file in if !unique.contains(file) { unique.append(file) } }
    }
}

/// What a set of files holds, as digests: compared before and after a directory event, it says
/// whether a file the daemon reads really changed (a directory event is often about another
/// file, or a write that left the same bytes). Only digests are kept: key material is held in
/// one place, the loaded key.
public struct KeyFileContents: Sendable, Equatable {
    /// Each file's SHA-256, or why it could not be read.
    public let digests: [String: String]

    /// Reads every file in `paths` now.
    public init(paths: [String]) {
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
    public func changed(since earlier: KeyFileContents) -> [String] {
        digests.keys.filter { digests[$0] != earlier.digests[$0] }.sorted()
    }
}
