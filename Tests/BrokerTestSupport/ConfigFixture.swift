package import BrokerConfig
package import Foundation

/// Keys shared by the tests: key generation is the slow part.
package enum Keys {
    package static let rsa2048: TestKey = SharedKeys.key("rsa2048")
    package static let other2048: TestKey = SharedKeys.key("other2048")
}

/// A configuration directory with a key file, for one test.
package struct ConfigFixture {
    package let directory: TemporaryDirectory
    package let keyPath: String

    package init(key: TestKey = Keys.rsa2048, kid: String? = "test-kid", alg: String? = "RS256") throws {
        directory = try TemporaryDirectory(prefix: "config")
        keyPath = try directory.write("notifications.jwk", Data(key.jwkJSON(kid: kid, alg: alg).utf8).base64EncodedString() + "\n", mode: 0o600)
    }

    /// A valid profile section, which tests change one line at a time.
    package static let profile = """
        profiles:
          notifications:
            environment: tt02
            client_id: 2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17
            scopes: [altinn:serviceowner/notifications.create]
            key:
              encoded_jwk_file: notifications.jwk
        """

    /// Writes `yaml` as broker.yaml and returns its path.
    package func write(_ yaml: String) throws -> String {
        try directory.write("broker.yaml", yaml, mode: 0o644)
    }

    package func load(_ yaml: String) throws -> BrokerConfiguration {
        try ConfigLoader.load(path: write(yaml))
    }
}
