import COpenSSL

/// The JWS algorithms Maskinporten accepts for grants: RSASSA-PKCS1-v1_5 with SHA-2.
package enum SigningAlgorithm: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case rs256 = "RS256"
    case rs384 = "RS384"
    case rs512 = "RS512"

    /// Parses `RS256`, `RS384` or `RS512` (case-sensitive, as in the JWS header).
    package init(name: String) throws {
        guard let algorithm = SigningAlgorithm(rawValue: name) else {
            throw BrokerCryptoError(.unsupportedAlgorithm, "unsupported algorithm \"\(name)\": use RS256, RS384 or RS512")
        }
        self = algorithm
    }

    package var description: String { rawValue }

    /// The digest's name, for an operation fetched from a provider of its own.
    var digestName: String {
        switch self {
        case .rs256: "SHA256"
        case .rs384: "SHA384"
        case .rs512: "SHA512"
        }
    }

    /// The digest, fetched once per process rather than implicitly on every signature.
    var digest: OpaquePointer { MessageDigests.shared.digest(for: self) }
}

/// Explicitly fetched `EVP_MD`s, kept for the life of the process.
private final class MessageDigests: @unchecked Sendable {
    // @unchecked: fetched EVP_MD objects are immutable and meant to be shared between threads.
    static let shared = MessageDigests()

    private let sha256: OpaquePointer
    private let sha384: OpaquePointer
    private let sha512: OpaquePointer

    private init() {
        func fetch(_ name: String) -> OpaquePointer {
            guard let md = EVP_MD_fetch(nil, name, nil) else {
                fatalError("OpenSSL has no \(name) digest: \(OpenSSLErrorQueue.drain())")
            }
            return md
        }
        sha256 = fetch("SHA256")
        sha384 = fetch("SHA384")
        sha512 = fetch("SHA512")
    }

    func digest(for algorithm: SigningAlgorithm) -> OpaquePointer {
        switch algorithm {
        case .rs256: sha256
        case .rs384: sha384
        case .rs512: sha512
        }
    }
}
