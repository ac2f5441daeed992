import BrokerTestSupport
import Foundation
import Testing

/// The executable as users run it: real files, real exit codes, openssl to check its output.
@Suite("Command line: check-config and sign-grant", .sharedKeys)
struct CommandLineTests {
    static let key: TestKey = SharedKeys.key("harness")

    /// A config directory with one EncodedJwk profile (the shared fixture's, with an algorithm and
    /// an allow list) and one business-certificate profile.
    struct Setup {
        let directory: TemporaryDirectory
        let config: String

        init(jwkMode: Int = 0o600, extra: String = "") async throws {
            let fixture = try ConfigFixture(key: CommandLineTests.key, kid: "cli-kid", alg: nil)
            directory = fixture.directory
            chmod(fixture.keyPath, mode_t(jwkMode))
            try await Command.openssl(
                "req", "-x509", "-key", CommandLineTests.key.pkcs8Path, "-out", directory.path("org.pem"), "-days", "30", "-subj",
                "/CN=Testorg AS/serialNumber=991825827")
            try directory.write("org.key", Data(contentsOf: URL(fileURLWithPath: CommandLineTests.key.pkcs8Path)), mode: 0o600)
            config = try fixture.write(
                ConfigFixture.profile + """

                        algorithm: RS384
                        allow:
                          users: [notifier]
                      business:
                        environment: prod
                        client_id: 11111111-2222-3333-4444-555555555555
                        scopes: [altinn:serviceowner/notifications.create, altinn:serviceowner/instances.read]
                        key:
                          certificate_file: org.pem
                          private_key_file: org.key
                        exchange: none
                    \(extra)
                    """)
        }
    }

    @Test("check-config prints each profile's environment, client id, kid, key size and algorithm")
    func checkConfigReport() async throws {
        let setup = try await Setup()
        let result = try await BrokerExecutable.run(["check-config", "--config", setup.config])
        #expect(result.status == 0, "\(result.errorOutput)")
        // The allow list's user is not on this host: serve would warn, so check-config does.
        #expect(
            result.errorOutput
                == "warning: \(setup.config): profiles.notifications.allow: allow list names that do not exist on this host are ignored: user notifier; create them (useradd, groupadd) or correct the names\n"
        )
        let out = result.output
        #expect(
            out.contains(
                "profile notifications\n  environment:  tt02 (aud https://test.maskinporten.no/, token endpoint https://test.maskinporten.no/token)\n  client id:    2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17\n  kid:          cli-kid\n  key:          RSA 2048 bits, EncodedJwk file \(setup.directory.path("notifications.jwk"))\n  algorithm:    RS384\n"
            ), "\(out)")
        #expect(out.contains("profile business\n  environment:  prod (aud https://maskinporten.no/"), "\(out)")
        #expect(
            out.contains(
                "  x5c:          serialNumber=991825827,CN=Testorg AS (organisation 991825827), issued by serialNumber=991825827,CN=Testorg AS, expires "),
            "\(out)")
        #expect(out.contains("organisation 991825827"), "\(out)")
        #expect(out.hasSuffix("ok: 2 profiles; 1 warning: 1 in profiles\n"), "\(out)")
        // The report is about keys but never shows one.
        for (_, bytes) in Self.key.parts {
            #expect(!out.contains(String(TestKey.base64url(bytes).prefix(16))))
        }
    }

    @Test("check-config finds the file through $MASKINPORTEN_BROKER_CONFIG")
    func configFromEnvironment() async throws {
        let setup = try await Setup()
        var environment = ProcessInfo.processInfo.environment
        environment["MASKINPORTEN_BROKER_CONFIG"] = setup.config
        let result = try await BrokerExecutable.run(["check-config"], environment: environment)
        #expect(result.status == 0, "\(result.errorOutput)")
        #expect(result.output.hasPrefix("configuration \(setup.config)\n"))
    }

    @Test("check-config exits 1 naming the file, the key path and the fix")
    func checkConfigErrors() async throws {
        let setup = try await Setup(jwkMode: 0o644)
        let result = try await BrokerExecutable.run(["check-config", "--config", setup.config])
        #expect(result.status == 1)
        let keyFile = setup.directory.path("notifications.jwk")
        #expect(
            result.errorOutput.hasPrefix(
                "error: \(setup.config): profiles.notifications.key.encoded_jwk_file: \(keyFile) holds a private key but is accessible by group or others (mode 0644); run: chmod 600 \(keyFile)\nwarning: "
            ), "\(result.errorOutput)")
        // The other profile is still checked and reported.
        #expect(result.output.contains("profile business\n  environment:  prod"))

        let typo = try await Setup(extra: "socket:\n  mdoe: \"0660\"")
        let typoResult = try await BrokerExecutable.run(["check-config", "--config", typo.config])
        #expect(typoResult.status == 1)
        #expect(
            typoResult.errorOutput.hasPrefix("error: \(typo.config):20: socket.mdoe: unknown key \"mdoe\"; did you mean \"mode\"?"), "\(typoResult.errorOutput)"
        )
    }

    @Test("check-config refuses what serve refuses and warns of what serve warns of, in the same words, counted by section")
    func checkConfigMatchesServe() async throws {
        let setup = try await Setup(
            extra: """
                  pat:
                    issuer: ttd
                    app: x
                    certificate_file: org.pem
                    private_key_file: missing.key
                """.replacingOccurrences(of: "  pat:", with: "platform_access_tokens:\n  pat:"))
        let open = setup.directory.path("open")
        try FileManager.default.createDirectory(atPath: open, withIntermediateDirectories: false, attributes: [.posixPermissions: 0o777])
        let config = try String(contentsOfFile: setup.config, encoding: .utf8)
        try setup.directory.write("broker.yaml", "socket:\n  path: \(open)/broker.sock\n" + config, mode: 0o644)

        let check = try await BrokerExecutable.run(["check-config", "--config", setup.config])
        #expect(check.status == 1)
        let refusal = "\(open) is writable by everyone, so anyone could replace the socket; use a directory such as /run/maskinporten-broker"
        let unknown =
            "allow list names that do not exist on this host are ignored: user notifier; create them (useradd, groupadd) or correct the names"
        #expect(check.errorOutput.contains("error: \(setup.config): socket.path: \(refusal)\n"), "\(check.errorOutput)")
        #expect(check.errorOutput.contains("warning: \(setup.config): profiles.notifications.allow: \(unknown)\n"), "\(check.errorOutput)")
        #expect(check.output.hasSuffix("2 errors: 1 in platform_access_tokens, 1 in socket; 1 warning: 1 in profiles\n"), "\(check.output)")

        // serve refuses the socket's directory in the same words...
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "LISTEN_FDS")
        let serve = try await BrokerExecutable.run(["serve", "--config", setup.config], environment: environment)
        #expect(serve.status == 78, "EX_CONFIG, which the unit does not restart")
        #expect(serve.errorOutput.contains(refusal), "\(serve.errorOutput)")

        // ...and, given a directory it may use, warns of the unknown user in the same words.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: open)
        let fixed = try await BrokerExecutable.run(["check-config", "--config", setup.config])
        #expect(fixed.output.hasSuffix("1 error: 1 in platform_access_tokens; 1 warning: 1 in profiles\n"), "\(fixed.output)")
        // serve --strict, as the unit runs it, refuses what check-config calls an error: its
        // report once, and exit 78. Without --strict the others are served.
        let strict = try await BrokerExecutable.run(["serve", "--strict", "--config", setup.config], environment: environment)
        #expect(strict.status == 78)
        #expect(strict.errorOutput.contains(fixed.output.dropLast()), "\(strict.errorOutput)")
        #expect(strict.errorOutput.components(separatedBy: "missing.key does not exist").count == 2, "said once: \(strict.errorOutput)")
        #expect(
            strict.errorOutput.hasSuffix(
                "error: not starting: the configuration has an error (exit status 78, not restarted); fix it, check it with check-config, then start again\n"))
        let daemon = try RunningProcess(try BrokerExecutable.path, ["serve", "--config", setup.config], environment: environment)
        let log = try await daemon.waitForOutput(containing: "allow list names")
        #expect(log.contains("level=warning msg=\"\(unknown)\" key=profiles.notifications.allow"), "\(log)")
        #expect(log.contains("msg=starting"), "\(log)")
        #expect(log.contains("socket=\(open)/broker.sock"), "\(log)")
        #expect(log.contains("profiles=\"business (prod), notifications (tt02)\""), "\(log)")
        // Stopped once it serves: its SIGTERM handling is in place from then on (a SIGTERM while
        // it still loads its configuration ends it by the signal's default action).
        for _ in 0..<100 where try await BrokerExecutable.run(["health", "--socket", "\(open)/broker.sock"]).status != 0 {
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(try await daemon.stop() == 0)
    }

    @Test("sign-grant prints one grant that openssl verifies, with a fresh jti each time")
    func signGrant() async throws {
        let setup = try await Setup()
        let first = try await BrokerExecutable.run(["sign-grant", "notifications", "--config", setup.config])
        #expect(first.status == 0, "\(first.errorOutput)")
        let grant = first.output.trimmingCharacters(in: .newlines)
        #expect(first.output == grant + "\n", "one line")
        #expect(try await Self.key.opensslVerify(jws: grant) == "Verified OK")
        let header = try JSONSerialization.jsonObject(with: TestKey.decodeBase64url(String(grant.split(separator: ".")[0]))) as? [String: String]
        #expect(header == ["alg": "RS384", "kid": "cli-kid"])
        let second = try await BrokerExecutable.run(["sign-grant", "notifications", "--config", setup.config]).output
        func jti(_ jwt: String) throws -> String? {
            let claims = try JSONSerialization.jsonObject(with: TestKey.decodeBase64url(String(jwt.split(separator: ".")[1]))) as? [String: Any]
            return claims?["jti"] as? String
        }
        #expect(try jti(grant) != jti(second.trimmingCharacters(in: .newlines)))

        let x5c = try await BrokerExecutable.run(["sign-grant", "business", "--config", setup.config])
        #expect(x5c.status == 0, "\(x5c.errorOutput)")
        #expect(try await Self.key.opensslVerify(jws: x5c.output.trimmingCharacters(in: .newlines)) == "Verified OK")
    }

    @Test("sign-grant for an unknown profile lists the known ones and exits 1")
    func signGrantUnknownProfile() async throws {
        let setup = try await Setup()
        let result = try await BrokerExecutable.run(["sign-grant", "nope", "--config", setup.config])
        #expect(result.status == 1)
        #expect(result.output.isEmpty)
        #expect(result.errorOutput == "error: \(setup.config): no profile \"nope\" (profiles: business, notifications)\n")
    }

    @Test("--help describes each command")
    func help() async throws {
        let top = try await BrokerExecutable.run(["--help"])
        #expect(top.status == 0)
        #expect(top.output.contains("check-config") && top.output.contains("sign-grant"))
        let check = try await BrokerExecutable.run(["check-config", "--help"])
        #expect(check.output.contains("--config"))
        // token and health run in the small executable; their help and usage errors come from
        // maskinporten-brokerd's parser, under the user's name for the command.
        let tokenHelp = try await BrokerExecutable.run(["token", "--help"])
        #expect(tokenHelp.status == 0)
        #expect(tokenHelp.output.contains("USAGE: maskinporten-broker token <profile>") && tokenHelp.output.contains("--min-valid"), "\(tokenHelp.output)")
        let missing = try await BrokerExecutable.run(["token"])
        #expect(missing.status == 64)
        #expect(missing.errorOutput.contains("Missing expected argument '<profile>'"), "\(missing.errorOutput)")
        let badNumber = try await BrokerExecutable.run(["token", "demo", "--min-valid", "soon"])
        #expect(badNumber.status == 64)
        #expect(badNumber.errorOutput.contains("--min-valid"), "\(badNumber.errorOutput)")
    }

    @Test("--version: both executables print the one version the package is built with, even alone")
    func version() async throws {
        // The line scripts/build-deb reads the package's version from.
        let source = try String(
            contentsOfFile: #filePath.replacingOccurrences(of: "Tests/IntegrationTests/CommandLineTests.swift", with: "Sources/BrokerClient/Version.swift"),
            encoding: .utf8)
        let line = try #require(source.split(separator: "\n").first { $0.hasPrefix("package let brokerVersion = \"") })
        let expected = String(line.split(separator: "\"")[1])
        let alone = try TemporaryDirectory(prefix: "version")
        try BrokerExecutable.copy(to: alone.path("maskinporten-broker"))
        for executable in [try BrokerExecutable.path, try BrokerExecutable.daemonPath, alone.path("maskinporten-broker")] {
            let result = try await Command.run(executable, ["--version"])
            #expect(result.status == 0, "\(executable)")
            #expect(result.output == expected + "\n", "\(executable): \(result.output)\(result.errorOutput)")
        }
    }

    @Test("maskinporten-broker without maskinporten-brokerd next to it: token still runs, other commands say what is missing")
    func frontAlone() async throws {
        let directory = try TemporaryDirectory(prefix: "front")
        let copy = directory.path("maskinporten-broker")
        try BrokerExecutable.copy(to: copy)
        let check = try await Command.run(copy, ["check-config", "--config", "/nonexistent.yaml"])
        #expect(check.status == 1)
        #expect(
            check.errorOutput
                == "maskinporten-broker: cannot run \(directory.path("maskinporten-brokerd")): No such file or directory (it is installed next to maskinporten-broker, from the same build)\n"
        )
        let token = try await Command.run(copy, ["token", "demo", "--socket", directory.path("none.sock")])
        #expect(token.status == 1)
        #expect(
            token.errorOutput.hasPrefix("maskinporten-broker token: cannot connect to \(directory.path("none.sock")): No such file or directory"),
            "\(token.errorOutput)")
    }
}
