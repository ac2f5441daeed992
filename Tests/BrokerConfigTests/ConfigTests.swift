import BrokerTestSupport
import Foundation
import Logging
import Testing

@testable import BrokerConfig
@testable import BrokerCrypto

@Suite("Configuration", .sharedKeys)
struct ConfigTests {
    @Test("config/broker.example.yaml parses with every section")
    func exampleParses() throws {
        let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/broker.example.yaml").standardizedFileURL
            .path
        let configuration = try ConfigLoader.load(path: example)
        #expect(configuration.socket == SocketSettings(path: "/run/maskinporten-broker/broker.sock", mode: 0o660, group: "maskinporten"))
        #expect(configuration.refresh == RefreshSettings(atFraction: 0.75, minValidSeconds: 10))
        #expect(configuration.environments.isEmpty, "the emulator's environment is commented out")
        let profile = try #require(configuration.profile(named: "notifications"))
        #expect(profile.environment.issuer == "https://test.maskinporten.no/")
        #expect(profile.environment.tokenEndpoint == "https://test.maskinporten.no/token")
        #expect(profile.environment.altinnPlatform == "https://platform.tt02.altinn.no")
        #expect(profile.scopes == ["altinn:serviceowner/notifications.create"])
        #expect(profile.keySource == .encodedJwkCredential(name: "notifications-jwk"), "the credential the systemd unit loads")
        #expect(profile.algorithm == nil)
        #expect(profile.exchange == .altinn)
        #expect(profile.allow == AccessList(users: ["notifier"]))
        #expect(configuration.platformAccessTokens.isEmpty && configuration.idPortenExchange == nil, "optional, commented out")
        #expect(configuration.audit == AuditSettings(onOverflow: .drop, summaryIntervalSeconds: 60))

        // Every commented-out option, uncommented, makes a valid configuration too: the comments
        // show real keys with real values. (The other key sources are left out: a profile has one.)
        let alternatives = ["encoded_jwk_file", "encoded_jwk_env", "virksomhet"]
        let uncommented = try String(contentsOfFile: example, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map { line in
            guard let match = line.wholeMatch(of: /(?<indent> *)# (?<option> *[a-z_][a-z0-9_-]*:.*)/),
                !alternatives.contains(where: { match.option.contains($0) })
            else {
                return String(line)
            }
            return String(match.indent + match.option)
        }.joined(separator: "\n")
        let full = try ConfigLoader.parse(yaml: uncommented, file: "uncommented", baseDirectory: "/")
        #expect(full.environments["local"]?.tokenEndpoint == "http://127.0.0.1:18080/token")
        #expect(full.platformAccessTokens.first?.lifetimeSeconds == 300)
        #expect(full.idPortenExchange?.environment.name == "tt02")
        #expect(full.metricsListen != nil && full.profiles.first?.kid == "2026-11-29-Xy7aBc3d")
        #expect(full.profiles.first?.allow == AccessList(users: ["notifier"], groups: ["notifier"], uids: [1001]))
    }

    @Test("the built-in environments are Digdir's and Altinn's addresses")
    func builtInEnvironments() {
        let table = MaskinportenEnvironment.builtIn.mapValues { "\($0.issuer) \($0.tokenEndpoint) \($0.altinnPlatform ?? "")" }
        #expect(
            table == [
                "prod": "https://maskinporten.no/ https://maskinporten.no/token https://platform.altinn.no",
                "tt02": "https://test.maskinporten.no/ https://test.maskinporten.no/token https://platform.tt02.altinn.no",
                "at22": "https://test.maskinporten.no/ https://test.maskinporten.no/token https://platform.at22.altinn.cloud",
                "at23": "https://test.maskinporten.no/ https://test.maskinporten.no/token https://platform.at23.altinn.cloud",
                "at24": "https://test.maskinporten.no/ https://test.maskinporten.no/token https://platform.at24.altinn.cloud",
                "yt01": "https://test.maskinporten.no/ https://test.maskinporten.no/token https://platform.yt01.altinn.cloud",
            ])
    }

    @Test("defaults, relative paths and the path search order")
    func defaultsAndPaths() throws {
        let fixture = try ConfigFixture()
        let configuration = try fixture.load(ConfigFixture.profile)
        #expect(configuration.socket == SocketSettings())
        #expect(configuration.refresh == RefreshSettings())
        let profile = try #require(configuration.profiles.first)
        #expect(profile.keySource == .encodedJwkFile(path: fixture.keyPath))
        #expect(profile.algorithm == nil && profile.exchange == .altinn && !profile.altinnTestOrg && profile.allow == nil)
        #expect(ConfigLoader.resolvePath(explicit: "/a", environment: ["MASKINPORTEN_BROKER_CONFIG": "/b"]) == "/a")
        #expect(ConfigLoader.resolvePath(explicit: nil, environment: ["MASKINPORTEN_BROKER_CONFIG": "/b"]) == "/b")
        #expect(ConfigLoader.resolvePath(explicit: nil, environment: [:]) == "/etc/maskinporten-broker/broker.yaml")
    }

    @Test("delegation and system user settings are read and organisation numbers checked")
    func delegationSettings() throws {
        let fixture = try ConfigFixture()
        let configuration = try fixture.load(
            ConfigFixture.profile + """

                    resource: [https://example.no/api]
                    consumer_org: "991825827"
                    system_user_org: 991825827
                    system_user_external_ref: ref-1
                """)
        let profile = try #require(configuration.profiles.first)
        #expect(profile.resource == ["https://example.no/api"])
        #expect(profile.consumerOrg?.digits == "991825827")
        #expect(profile.systemUserOrg?.digits == "991825827")
        #expect(profile.systemUserExternalRef == "ref-1")
    }

    @Test("rotation: durations, the state directory, the built-in self-service API, and a self_service_profile that can call it")
    func rotationSettings() throws {
        let fixture = try ConfigFixture()
        let configuration = try fixture.load(
            "state_directory: state\n" + ConfigFixture.profile + """

                    rotation:
                      every: 90d
                      retire_after: 12h
                      self_service_profile: admin
                  admin:
                    environment: tt02
                    client_id: admin-client
                    scopes: [idporten:dcr.read, idporten:dcr.write]
                    exchange: none
                    key:
                      encoded_jwk_file: admin.jwk
                """)
        let rotation = try #require(configuration.profile(named: "notifications")?.rotation)
        #expect(rotation.every == 90 * 86_400 && rotation.retireAfter == 12 * 3600 && rotation.selfServiceProfile == "admin")
        #expect(configuration.stateDirectory == fixture.directory.path("state"))
        #expect(rotation.keysFile == fixture.directory.path("state/notifications.keys.jwk"))
        #expect(configuration.profile(named: "notifications")?.environment.selfServiceAPI == "https://api.test.samarbeid.digdir.no/api/v1/clients")
        #expect(MaskinportenEnvironment.builtIn["prod"]?.selfServiceAPI == "https://api.samarbeid.digdir.no/api/v1/clients")
    }

    // MARK: - Every validation error

    struct Invalid: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var code: ConfigError.Code
        var keyPath: String
        var mentions: String
        var testDescription: String { name }
    }

    static let base = ConfigFixture.profile

    static let invalid: [Invalid] = [
        Invalid(
            name: "unknown top-level key", yaml: base + "\nsockets:\n  path: /run/x.sock",
            code: .unknownKey, keyPath: "sockets", mentions: "did you mean \"socket\""),
        Invalid(
            name: "unknown profile key", yaml: base.replacingOccurrences(of: "scopes:", with: "scope:"),
            code: .unknownKey, keyPath: "profiles.notifications.scope", mentions: "did you mean \"scopes\""),
        Invalid(
            name: "unknown key source", yaml: base.replacingOccurrences(of: "encoded_jwk_file:", with: "jwk_file:"),
            code: .unknownKey, keyPath: "profiles.notifications.key.jwk_file", mentions: "unknown key"),
        Invalid(
            name: "missing client id", yaml: base.replacingOccurrences(of: "    client_id: 2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17\n", with: ""),
            code: .missingKey, keyPath: "profiles.notifications.client_id", mentions: "client id is required"),
        Invalid(
            name: "empty client id", yaml: base.replacingOccurrences(of: "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17", with: "\"\""),
            code: .invalidValue, keyPath: "profiles.notifications.client_id", mentions: "must not be empty"),
        Invalid(
            name: "empty scope list", yaml: base.replacingOccurrences(of: "[altinn:serviceowner/notifications.create]", with: "[]"),
            code: .invalidValue, keyPath: "profiles.notifications.scopes", mentions: "the list is empty"),
        Invalid(
            name: "scopes as one string", yaml: base.replacingOccurrences(of: "[altinn:serviceowner/notifications.create]", with: "a b"),
            code: .wrongType, keyPath: "profiles.notifications.scopes", mentions: "expected a list"),
        Invalid(
            name: "missing scopes", yaml: base.replacingOccurrences(of: "    scopes: [altinn:serviceowner/notifications.create]\n", with: ""),
            code: .missingKey, keyPath: "profiles.notifications.scopes", mentions: "at least one scope"),
        Invalid(
            name: "two key sources", yaml: base + "\n      encoded_jwk_env: NOTIFICATIONS_JWK",
            code: .keySource, keyPath: "profiles.notifications.key", mentions: "exactly one key source is allowed, found encoded_jwk_file and encoded_jwk_env"),
        Invalid(
            name: "no key source", yaml: base.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "kid: abc"),
            code: .keySource, keyPath: "profiles.notifications.key", mentions: "no key source"),
        Invalid(
            name: "a provider without its uri", yaml: base.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "provider: tpm2"),
            code: .keySource, keyPath: "profiles.notifications.key.provider", mentions: "a provider's key is named by uri: such as uri: \"handle:0x81000001\""),
        Invalid(
            name: "a provider's uri without a scheme",
            yaml: base.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "provider: tpm2\n      uri: 0x81000001"),
            code: .keySource, keyPath: "profiles.notifications.key.uri", mentions: "handle:0x81000001"),
        Invalid(
            name: "a uri without a provider",
            yaml: base.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "uri: \"handle:0x81000001\""),
            code: .keySource, keyPath: "profiles.notifications.key.uri", mentions: "uri goes with provider: (provider: tpm2"),
        Invalid(
            name: "a provider's name that is none",
            yaml: base.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "provider: \"tpm 2\"\n      uri: \"handle:0x81000001\""),
            code: .invalidValue, keyPath: "profiles.notifications.key.provider", mentions: "is not an OpenSSL provider's name"),
        Invalid(
            name: "a provider and a key file", yaml: base + "\n      provider: tpm2\n      uri: \"handle:0x81000001\"",
            code: .keySource, keyPath: "profiles.notifications.key", mentions: "exactly one key source is allowed, found encoded_jwk_file and provider"),
        Invalid(
            name: "two TPM keys naming two TPMs",
            yaml: base.replacingOccurrences(
                of: "encoded_jwk_file: notifications.jwk", with: "provider: tpm2\n      uri: \"handle:0x81000001\"\n      tcti: \"swtpm:path=/run/a\"")
                + "\n  second:\n    environment: tt02\n    client_id: x\n    scopes: [a]\n    key: { provider: tpm2, uri: \"handle:0x81000002\" }",
            code: .invalidValue, keyPath: "profiles.second.key",
            mentions:
                "this key's TPM is no tcti (the kernel's /dev/tpmrm0), profile notifications's is tcti swtpm:path=/run/a; the daemon talks to one TPM: give every TPM key the same tcti"
        ),
        Invalid(
            name: "key and keys both", yaml: base + "\n    keys:\n      - encoded_jwk_file: other.jwk",
            code: .keySource, keyPath: "profiles.notifications.keys", mentions: "key and keys both name the profile's keys: keep one"),
        Invalid(
            name: "an empty keys list",
            yaml: base.replacingOccurrences(of: "    key:\n      encoded_jwk_file: notifications.jwk", with: "    keys: []"),
            code: .keySource, keyPath: "profiles.notifications.keys", mentions: "the list is empty"),
        Invalid(
            name: "keys that is no list",
            yaml: base.replacingOccurrences(of: "    key:\n      encoded_jwk_file: notifications.jwk", with: "    keys:\n      encoded_jwk_file: a.jwk"),
            code: .wrongType, keyPath: "profiles.notifications.keys", mentions: "expected a list of mappings"),
        Invalid(
            name: "a certificate among keys",
            yaml: base.replacingOccurrences(
                of: "    key:\n      encoded_jwk_file: notifications.jwk",
                with: "    keys:\n      - { certificate_file: c.pem, private_key_file: k.pem }\n      - encoded_jwk_file: a.jwk"),
            code: .keySource, keyPath: "profiles.notifications.keys[0]", mentions: "a business certificate signs alone"),
        Invalid(
            name: "an unknown key in one of keys",
            yaml: base.replacingOccurrences(
                of: "    key:\n      encoded_jwk_file: notifications.jwk", with: "    keys:\n      - encoded_jwk_file: a.jwk\n      - jwk_file: b.jwk"),
            code: .unknownKey, keyPath: "profiles.notifications.keys[1].jwk_file", mentions: "unknown key"),
        Invalid(
            name: "no key at all", yaml: base.replacingOccurrences(of: "    key:\n      encoded_jwk_file: notifications.jwk", with: ""),
            code: .keySource, keyPath: "profiles.notifications.key", mentions: "a key is required"),
        Invalid(
            name: "certificate without its key", yaml: base.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "certificate_file: cert.pem"),
            code: .keySource, keyPath: "profiles.notifications.key.certificate_file", mentions: "needs private_key_file"),
        Invalid(
            name: "certificate with kid",
            yaml: base.replacingOccurrences(
                of: "encoded_jwk_file: notifications.jwk", with: "certificate_file: c.pem\n      private_key_file: k.pem\n      kid: x"),
            code: .keySource, keyPath: "profiles.notifications.key.kid", mentions: "x5c, not kid"),
        Invalid(
            name: "unknown environment", yaml: base.replacingOccurrences(of: "environment: tt02", with: "environment: tt03"),
            code: .unknownEnvironment, keyPath: "profiles.notifications.environment",
            mentions: "unknown environment \"tt03\" (known: at22, at23, at24, prod, tt02, yt01"),
        Invalid(
            name: "Samarbeidsportalen's name for the test environment", yaml: base.replacingOccurrences(of: "environment: tt02", with: "environment: ver2"),
            code: .unknownEnvironment, keyPath: "profiles.notifications.environment",
            mentions:
                "unknown environment \"ver2\": Samarbeidsportalen calls Maskinporten's test environment \"ver2\", this broker calls it by Altinn's name: use environment: tt02"
        ),
        Invalid(
            name: "http to a non-loopback host",
            yaml: "environments:\n  lab:\n    maskinporten_issuer: http://maskinporten.example.com/\n    altinn_platform: https://a.example.com\n"
                + base.replacingOccurrences(of: "tt02", with: "lab"),
            code: .insecureEndpoint, keyPath: "environments.lab.maskinporten_issuer", mentions: "plain http:// is allowed only to loopback hosts"),
        Invalid(
            name: "http to a private address",
            yaml: "environments:\n  lab:\n    maskinporten_issuer: https://m.example.com/\n    altinn_platform: http://10.0.0.5:8080\n" + base,
            code: .insecureEndpoint, keyPath: "environments.lab.altinn_platform", mentions: "use https:// for 10.0.0.5"),
        Invalid(
            name: "redefined built-in environment", yaml: "environments:\n  prod:\n    maskinporten_issuer: https://m.example.com/\n" + base,
            code: .invalidValue, keyPath: "environments.prod", mentions: "built-in environment"),
        Invalid(
            name: "not a URL", yaml: "environments:\n  lab:\n    maskinporten_issuer: maskinporten\n" + base,
            code: .invalidValue, keyPath: "environments.lab.maskinporten_issuer", mentions: "not an absolute URL"),
        Invalid(
            name: "exchange to an environment without Altinn",
            yaml: "environments:\n  lab:\n    maskinporten_issuer: http://127.0.0.1:1/\n" + base.replacingOccurrences(of: "tt02", with: "lab"),
            code: .invalidValue, keyPath: "profiles.notifications.exchange", mentions: "has no altinn_platform"),
        Invalid(
            name: "unknown algorithm", yaml: base + "\n    algorithm: HS256",
            code: .invalidValue, keyPath: "profiles.notifications.algorithm", mentions: "use RS256, RS384 or RS512"),
        Invalid(
            name: "unknown exchange", yaml: base + "\n    exchange: idporten",
            code: .invalidValue, keyPath: "profiles.notifications.exchange", mentions: "use altinn or none"),
        Invalid(
            name: "test org without exchange", yaml: base + "\n    exchange: none\n    altinn_test_org: true",
            code: .invalidValue, keyPath: "profiles.notifications.altinn_test_org", mentions: "exchange is none"),
        Invalid(
            name: "not a boolean", yaml: base + "\n    altinn_test_org: yes",
            code: .wrongType, keyPath: "profiles.notifications.altinn_test_org", mentions: "expected true or false"),
        Invalid(
            name: "bad organisation number", yaml: base + "\n    consumer_org: \"991825828\"",
            code: .invalidValue, keyPath: "profiles.notifications.consumer_org", mentions: "check digit is wrong"),
        Invalid(
            name: "short organisation number", yaml: base + "\n    system_user_org: \"12345\"",
            code: .invalidValue, keyPath: "profiles.notifications.system_user_org", mentions: "exactly 9 digits"),
        Invalid(
            name: "external ref without system user", yaml: base + "\n    system_user_external_ref: x",
            code: .invalidValue, keyPath: "profiles.notifications.system_user_external_ref", mentions: "needs system_user_org"),
        Invalid(
            name: "bad profile name", yaml: base.replacingOccurrences(of: "  notifications:", with: "  \"bad/name\":"),
            code: .invalidValue, keyPath: "profiles.bad/name", mentions: "not a usable name"),
        Invalid(
            name: "relative socket path", yaml: "socket:\n  path: broker.sock\n" + base,
            code: .invalidValue, keyPath: "socket.path", mentions: "must be absolute"),
        Invalid(
            name: "socket mode not octal", yaml: "socket:\n  mode: \"rw-rw----\"\n" + base,
            code: .invalidValue, keyPath: "socket.mode", mentions: "in octal"),
        Invalid(
            name: "refresh fraction out of range", yaml: "refresh:\n  at_fraction: 1.5\n" + base,
            code: .invalidValue, keyPath: "refresh.at_fraction", mentions: "between 0.1 and 0.95"),
        Invalid(
            name: "min_valid_seconds not a number", yaml: "refresh:\n  min_valid_seconds: ten\n" + base,
            code: .wrongType, keyPath: "refresh.min_valid_seconds", mentions: "whole number"),
        Invalid(
            name: "unknown audit overflow choice", yaml: "audit:\n  on_overflow: block\n" + base,
            code: .invalidValue, keyPath: "audit.on_overflow", mentions: "use drop (lines that cannot be buffered are dropped and counted) or refuse"),
        Invalid(
            name: "audit summary interval out of range", yaml: "audit:\n  summary_interval_seconds: 0\n" + base,
            code: .invalidValue, keyPath: "audit.summary_interval_seconds", mentions: "between 1 and 3600"),
        Invalid(
            name: "misspelt audit key", yaml: "audit:\n  on_overflw: refuse\n" + base,
            code: .unknownKey, keyPath: "audit.on_overflw", mentions: "did you mean \"on_overflow\""),
        Invalid(
            name: "uid not a number", yaml: base + "\n    allow:\n      uids: [notifier]",
            code: .invalidValue, keyPath: "profiles.notifications.allow.uids", mentions: "not a numeric user id"),
        Invalid(
            name: "profiles is a list", yaml: "profiles:\n  - notifications\n",
            code: .wrongType, keyPath: "profiles", mentions: "expected a mapping"),
        Invalid(
            name: "nothing to serve", yaml: "socket:\n  path: /run/x.sock\n",
            code: .empty, keyPath: "profiles", mentions: "nothing to serve"),
        Invalid(
            name: "broken YAML", yaml: "profiles:\n  notifications: [\n",
            code: .yamlSyntax, keyPath: "", mentions: "YAML syntax error"),
        Invalid(
            name: "a tab for indentation", yaml: base.replacingOccurrences(of: "\n    scopes:", with: "\n\tscopes:"),
            code: .yamlSyntax, keyPath: "", mentions: "holds a tab character, and YAML indents with spaces only: replace the tab with spaces"),
        Invalid(
            name: "rotation duration without a unit it knows", yaml: base + "\n    rotation:\n      every: 3 months",
            code: .invalidValue, keyPath: "profiles.notifications.rotation.every", mentions: "not a duration"),
        Invalid(
            name: "rotation without every", yaml: base + "\n    rotation:\n      retire_after: 1d",
            code: .missingKey, keyPath: "profiles.notifications.rotation.every", mentions: "how old the newest key may get"),
        Invalid(
            name: "rotation with a pinned kid", yaml: base + "\n      kid: one\n    rotation:\n      every: 90d",
            code: .invalidValue, keyPath: "profiles.notifications.rotation", mentions: "remove key.kid"),
        Invalid(
            name: "rotation's self-service profile lacks the scopes",
            yaml: base + "\n    rotation:\n      every: 90d\n      self_service_profile: notifications",
            code: .invalidValue, keyPath: "profiles.notifications.rotation.self_service_profile",
            mentions: "must have the scopes idporten:dcr.read and idporten:dcr.write"),
        Invalid(
            name: "rotation's self-service profile unknown", yaml: base + "\n    rotation:\n      every: 90d\n      self_service_profile: nobody",
            code: .invalidValue, keyPath: "profiles.notifications.rotation.self_service_profile", mentions: "no profile \"nobody\""),
        Invalid(
            name: "duplicate key", yaml: base + "\n    client_id: again",
            code: .yamlSyntax, keyPath: "", mentions: "\"client_id\" appears twice"),
        Invalid(
            name: "gateway paths not ending in /", yaml: base + "\n    gateway:\n      paths: [/notifications/api/v1]",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.paths", mentions: "must start and end with /"),
        Invalid(
            name: "gateway path /", yaml: base + "\n    gateway:\n      paths: [/]",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.paths", mentions: "every Altinn API"),
        Invalid(
            name: "gateway path with ..", yaml: base + "\n    gateway:\n      paths: [/notifications/../authentication/]",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.paths", mentions: "a . or .. segment"),
        Invalid(
            name: "gateway path encoded", yaml: base + "\n    gateway:\n      paths: [/notifications%2Fapi/]",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.paths", mentions: "only plain path characters"),
        Invalid(
            name: "gateway paths empty", yaml: base + "\n    gateway:\n      paths: []",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.paths", mentions: "the list is empty"),
        Invalid(
            name: "gateway unknown key", yaml: base + "\n    gateway:\n      timeout: 30",
            code: .unknownKey, keyPath: "profiles.notifications.gateway.timeout",
            mentions: "known here: paths, platform_access_token, max_body_bytes, timeout_seconds"),
        Invalid(
            name: "gateway with exchange none", yaml: base + "\n    exchange: none\n    gateway: {}",
            code: .invalidValue, keyPath: "profiles.notifications.gateway", mentions: "exchange: none gives none"),
        Invalid(
            name: "gateway timeout too long", yaml: base + "\n    gateway:\n      timeout_seconds: 3600",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.timeout_seconds", mentions: "between 1 and 600"),
        Invalid(
            name: "gateway body limit too large", yaml: base + "\n    gateway:\n      max_body_bytes: 1000000000",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.max_body_bytes", mentions: "64 MiB"),
        Invalid(
            name: "gateway platform access token unknown", yaml: base + "\n    gateway:\n      platform_access_token: app",
            code: .invalidValue, keyPath: "profiles.notifications.gateway.platform_access_token",
            mentions: "no Platform Access Token named \"app\" (none is configured)"),
    ]

    @Test("each validation error names the file, the key path and what is wrong", arguments: invalid)
    func refuses(_ invalid: Invalid) throws {
        let fixture = try ConfigFixture()
        let path = try fixture.write(invalid.yaml)
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.load(path: path) }
        #expect(error?.code == invalid.code, "\(error?.description ?? "")")
        #expect(error?.keyPath == invalid.keyPath, "\(error?.description ?? "")")
        #expect(error?.message.contains(invalid.mentions) == true, "\(error?.description ?? "")")
        #expect(error?.description.hasPrefix(path) == true, "\(error?.description ?? "")")
        if invalid.code != .empty && invalid.code != .yamlSyntax || invalid.name == "broken YAML" {
            #expect(error?.line != nil, "errors tied to a line give it: \(error?.description ?? "")")
        }
    }

    @Test("a client id still the example's placeholder is warned of, by check-config and serve alike")
    func placeholderClientID() throws {
        let fixture = try ConfigFixture()
        let placeholder = ConfigFixture.profile.replacingOccurrences(of: "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17", with: "2f3c9a1e-0000-4000-8000-000000000000")
        let loaded = try LoadedConfiguration.load(path: fixture.write(placeholder), loader: KeyLoader(environment: [:]))
        let warnings = loaded.warnings(logLevel: .info)
        #expect(warnings.map(\.code) == [.placeholder])
        #expect(warnings.first?.keyPath == "profiles.notifications.client_id")
        #expect(warnings.first?.message.contains("set it to your integration's id from Samarbeidsportalen") == true)
        let real = try LoadedConfiguration.load(path: fixture.write(ConfigFixture.profile), loader: KeyLoader(environment: [:]))
        #expect(real.warnings(logLevel: .info).isEmpty)
    }

    @Test("a missing file is named")
    func missingFile() {
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.load(path: "/nonexistent/broker.yaml") }
        #expect(error?.code == .unreadableFile)
        #expect(error?.description == "/nonexistent/broker.yaml: the configuration file does not exist")
    }

    @Test(
        "organisation numbers: mod-11 check digit",
        arguments: [
            ("991825827", true), ("974760673", true), ("910825496", true), ("991825828", false),
            ("123456789", false), ("99182582", false), ("9918258270", false), ("99182582x", false),
            ("x91825827", false), ("\u{0669}\u{0669}\u{0661}\u{0668}\u{0662}\u{0665}\u{0668}\u{0662}\u{0667}", false), ("", false),
        ])
    func organisationNumbers(_ text: String, _ valid: Bool) {
        #expect(((try? OrganisationNumber(text)) != nil) == valid, "\(text)")
    }
}

@Suite("gateway: in a profile")
struct GatewayConfigTests {
    @Test("gateway: {} gives the Notifications API, 1 MiB and 30 s; without it there is none")
    func defaults() throws {
        let fixture = try ConfigFixture()
        let plain = try fixture.load(ConfigFixture.profile)
        #expect(plain.profiles.first?.gateway == nil)
        let gateway = try #require(try fixture.load(ConfigFixture.profile + "\n    gateway: {}").profiles.first?.gateway)
        #expect(gateway == GatewaySettings(paths: ["/notifications/api/v1/"], platformAccessToken: nil, maxBodyBytes: 1_048_576, timeoutSeconds: 30))
    }

    @Test("every setting is read")
    func settings() throws {
        let yaml =
            ConfigFixture.profile + """

                    gateway:
                      paths: [/notifications/api/v1/, /correspondence/api/v1/]
                      max_body_bytes: 2048
                      timeout_seconds: 5
                """
        let gateway = try #require(try ConfigFixture().load(yaml).profiles.first?.gateway)
        #expect(gateway.paths == ["/notifications/api/v1/", "/correspondence/api/v1/"])
        #expect(gateway.maxBodyBytes == 2048)
        #expect(gateway.timeoutSeconds == 5)
    }
}
