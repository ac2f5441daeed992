package import BrokerCrypto
package import Foundation
package import Logging
package import MaskinportenEmulator

extension SharedKeys {
    /// The shared key `name` as the code under test holds keys (made here if not prepared).
    package static func privateKey(_ name: String) throws -> RSAPrivateKey {
        var pem = Array(try Data(contentsOf: URL(fileURLWithPath: key(name).pkcs8Path)))
        defer { pem.resetSecretBytes() }
        return try RSAPrivateKey(pem: pem)
    }
}

extension EmulatorServer {
    /// An emulator on a free loopback port signing with the shared `emulator` key: an emulator
    /// making its own would make an RSA key on the cooperative pool for every test.
    package static func bindForTests(logger: Logger) async throws -> EmulatorServer {
        try await SharedKeys.prepare()
        return try await bind(signingKey: try SharedKeys.privateKey("emulator"), logger: logger)
    }
}

extension Emulator {
    /// An emulator (not listening) signing with the shared `emulator` key.
    package static func forTests(issuer: String) throws -> Emulator {
        try Emulator(issuer: issuer, signingKey: try SharedKeys.privateKey("emulator"))
    }
}
