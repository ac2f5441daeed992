package import BrokerCrypto

/// A configuration or key problem, located by file, key path and (where known) line.
///
/// Errors are equal when their codes are equal, so tests can name the error they expect. The
/// message never contains key material.
package struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem this is.
    package enum Code: String, Hashable, Sendable {
        /// The file could not be read.
        case unreadableFile
        /// The YAML itself is broken.
        case yamlSyntax
        /// A key the broker does not know: a typo, or an option of another version.
        case unknownKey
        /// A required key is absent.
        case missingKey
        /// A value of the wrong YAML type (a list where a string belongs, ...).
        case wrongType
        /// A value of the right type that is not allowed.
        case invalidValue
        /// An environment name that is neither built in nor defined under `environments`.
        case unknownEnvironment
        /// `http://` to a host that is not loopback.
        case insecureEndpoint
        /// No key source, or more than one.
        case keySource
        /// A key file readable by group or others.
        case keyPermissions
        /// Key material that cannot be read or used; `cryptoCode` says why.
        case invalidKey
        /// Nothing to serve.
        case empty
        /// A user or group name this host does not have.
        case unknownAccount
        /// The socket cannot be made at `socket.path`.
        case socketPlace
        /// A setting that has no effect as configured.
        case ineffective
        /// A file the service's user cannot read.
        case serviceAccess
        /// A value still the example's placeholder.
        case placeholder
    }

    /// What kind of problem this is.
    package let code: Code
    /// The configuration file.
    package let file: String
    /// Where in the file: `profiles.notifications.key`.
    package let keyPath: String
    /// The line in the file, when the problem is tied to one.
    package let line: Int?
    /// What is wrong, and where possible how to fix it.
    package let message: String
    /// For `.invalidKey`: the key parser's own code.
    package let cryptoCode: BrokerCryptoError.Code?

    /// Creates an error.
    package init(_ code: Code, file: String, keyPath: String, line: Int? = nil, _ message: String, cryptoCode: BrokerCryptoError.Code? = nil) {
        self.code = code
        self.file = file
        self.keyPath = keyPath
        self.line = line
        self.message = message
        self.cryptoCode = cryptoCode
    }

    package static func == (lhs: Self, rhs: Self) -> Bool { lhs.code == rhs.code }
    package func hash(into hasher: inout Hasher) { hasher.combine(code) }

    /// `file:line: key.path: message`.
    package var description: String {
        let location = line.map { "\(file):\($0)" } ?? file
        return keyPath.isEmpty ? "\(location): \(message)" : "\(location): \(keyPath): \(message)"
    }
}
