import BrokerTestSupport
import Foundation
import Testing

/// The configurations shipped in `config/` work as shipped: `check-config` passes on each, with
/// the key files it names made by `keygen`, as a new user would make them.
@Suite("The example configurations", .sharedKeys)
struct ExampleConfigTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func example(_ name: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent("config/\(name)"), encoding: .utf8)
    }

    /// The example with `/etc/maskinporten-broker/` moved into `directory`, every key file it
    /// names made there by keygen, and the environment check-config needs (the credentials
    /// directory systemd would give the unit).
    static func prepare(_ name: String, in directory: TemporaryDirectory) async throws -> (config: String, environment: [String: String]) {
        var text = try example(name).replacingOccurrences(of: "/etc/maskinporten-broker/", with: directory.path("") + "/")
            .replacingOccurrences(of: "/run/secrets/maskinporten-broker/", with: directory.path("secrets") + "/")
        // The socket's group is made by the package (sysusers.d); on a host without it, the
        // check would rightly fail on it. The package test checks the example as installed.
        if (try? await Command.run("getent", ["group", "maskinporten"]).status) != 0 {
            text = text.replacingOccurrences(of: "group: maskinporten", with: "group: root")
        }
        let config = try directory.write(name, text, mode: 0o644)
        var environment = ProcessInfo.processInfo.environment
        let credentials = directory.path("credentials")
        try FileManager.default.createDirectory(atPath: credentials, withIntermediateDirectories: true)
        environment["CREDENTIALS_DIRECTORY"] = credentials
        for line in text.split(separator: "\n") {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            let file: String
            if trimmed.hasPrefix("encoded_jwk_file: ") {
                let value = String(trimmed.dropFirst("encoded_jwk_file: ".count).split(separator: " ")[0])
                file = value.hasPrefix("/") ? value : directory.path(value)
            } else if trimmed.hasPrefix("encoded_jwk_credential: ") {
                file = credentials + "/" + trimmed.dropFirst("encoded_jwk_credential: ".count).split(separator: " ")[0]
            } else {
                continue
            }
            try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            let made = try await BrokerExecutable.run(["keygen", "--out", file])
            #expect(made.status == 0, "\(made.errorOutput)")
        }
        return (config, environment)
    }

    @Test(
        "check-config passes on each example with keys made by keygen",
        arguments: ["broker.example.yaml", "tt02.minimal.yaml", "dev.example.yaml", "container.example.yaml"])
    func checkConfigPasses(name: String) async throws {
        let directory = try TemporaryDirectory(prefix: "example")
        let (config, environment) = try await Self.prepare(name, in: directory)
        let check = try await BrokerExecutable.run(["check-config", "--config", config], environment: environment)
        #expect(check.status == 0, "\(check.output)\(check.errorOutput)")
        let summary = check.output.split(separator: "\n").last.map(String.init) ?? ""
        #expect(summary.hasPrefix("ok: 1 profile"), "\(check.output)")
        // Errors never. The warnings an example may give: its allow list's user, who belongs to
        // the reader's host, and its placeholder client id, until the reader sets theirs.
        #expect(!check.errorOutput.contains("error:"), "\(check.errorOutput)")
        let placeholder = "client_id is still the example's placeholder"
        for line in check.errorOutput.split(separator: "\n") {
            #expect(line.contains("allow list names that do not exist on this host are ignored: user notifier") || line.contains(placeholder), "\(line)")
        }
        #expect(check.errorOutput.contains(placeholder) == (name != "dev.example.yaml"), "\(check.errorOutput)")
    }

    @Test("the shipped example matches the units: the socket unit's path and the service's credential")
    func matchesUnits() throws {
        let example = try Self.example("broker.example.yaml")
        let socketUnit = try String(contentsOf: Self.repository.appendingPathComponent("systemd/maskinporten-broker.socket"), encoding: .utf8)
        let service = try String(contentsOf: Self.repository.appendingPathComponent("systemd/maskinporten-broker.service"), encoding: .utf8)
        let listen = try #require(socketUnit.split(separator: "\n").first { $0.hasPrefix("ListenStream=") }).dropFirst("ListenStream=".count)
        #expect(example.contains("  path: \(listen) "))
        let credential = try #require(service.split(separator: "\n").first { $0.hasPrefix("LoadCredential=") }).dropFirst("LoadCredential=".count)
        let credentialName = try #require(credential.split(separator: ":").first)
        #expect(example.contains("      encoded_jwk_credential: \(credentialName)\n"))
        let group = try #require(socketUnit.split(separator: "\n").first { $0.hasPrefix("SocketGroup=") }).dropFirst("SocketGroup=".count)
        #expect(example.contains("  group: \(group) "))
    }
}
