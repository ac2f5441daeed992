import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials

/// A demo client for an emulator: a fresh RSA key registered as client `demo-client`, its
/// EncodedJwk written 0600 as `demo.jwk`, and a `broker.yaml` with profile `demo` against the
/// emulator, both in `directory`. What `maskinporten-broker dev` runs on, and what the HTTP
/// fuzz target builds its router from.
package enum DemoSetup {
    /// The demo's scope.
    package static let scope = "altinn:serviceowner/notifications.create"

    /// Writes the key and the configuration; returns the configuration's path. With
    /// `socketPath`, the configuration has a `socket` section (mode 0600).
    package static func write(in directory: URL, for emulator: Emulator, socketPath: String? = nil) throws -> String {
        let key = try RSAPrivateKey.generate()
        let kid = "demo-" + Digest.fingerprint(UUID().uuidString)
        // The self-service scopes too, so that adding `rotation:` to the demo profile works.
        emulator.register(
            RegisteredClient(
                clientID: "demo-client", scopes: [scope, "idporten:dcr.read", "idporten:dcr.write"],
                keys: [try key.publicKey.jwk(kid: kid, algorithm: .rs256)]))
        var jwk = try JSONEncoder().encode(try key.privateJWK(kid: kid, madeAt: Int(Date().timeIntervalSince1970)))
        defer { jwk.resetBytes(in: 0..<jwk.count) }
        let keyFile = directory.appendingPathComponent("demo.jwk")
        guard
            FileManager.default.createFile(
                atPath: keyFile.path, contents: Data(Base64.standardEncoded(Array(jwk)).utf8), attributes: [.posixPermissions: 0o600])
        else {
            throw SystemError("writing \(keyFile.path)")
        }
        let socket = socketPath.map { "socket:\n  path: \($0)\n  mode: \"0600\"\n" } ?? ""
        let configPath = directory.appendingPathComponent("broker.yaml").path
        let text = """
            # Written for the demo: the emulator on \(emulator.altinnPlatform) and a demo key.
            \(socket)environments:
              local:
                maskinporten_issuer: \(emulator.issuer)
                altinn_platform: \(emulator.altinnPlatform)
                self_service_api: \(emulator.altinnPlatform)/api/v1/clients
            profiles:
              demo:
                environment: local
                client_id: demo-client
                scopes: [\(scope)]
                key:
                  encoded_jwk_file: demo.jwk
                # /v1/api/demo/notifications/api/v1/... goes to the emulator's Notifications API.
                gateway: {}
            """
        try AtomicFile.write(Array(text.utf8), to: configPath, replacing: true)
        return configPath
    }
}
