import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerConfig
@testable import BrokerCrypto
@testable import BrokerPOSIX

@Suite("Key sources", .sharedKeys)
struct KeyLoaderTests {
    func profile(_ fixture: ConfigFixture, key: String, extra: String = "") throws -> (Profile, String) {
        let yaml = ConfigFixture.profile.replacingOccurrences(of: "      encoded_jwk_file: notifications.jwk", with: key) + extra
        let path = try fixture.write(yaml)
        return (try #require(ConfigLoader.load(path: path).profiles.first), path)
    }

    /// The fixture's profile with `keys:` (the list's lines) in its `key:` section's place.
    func profile(_ fixture: ConfigFixture, keys: String) throws -> (Profile, String) {
        let yaml = ConfigFixture.profile.replacingOccurrences(of: "    key:\n      encoded_jwk_file: notifications.jwk", with: "    keys:\n" + keys)
        let path = try fixture.write(yaml)
        return (try #require(ConfigLoader.load(path: path).profiles.first), path)
    }

    @Test("profiles naming one key share it in a pass over the configuration; another key is its own; the next pass makes its keys anew")
    func sharedKeys() throws {
        let fixture = try ConfigFixture()
        try fixture.directory.write(
            "other.jwk", Data(Keys.other2048.jwkJSON(kid: "other-kid", alg: "RS256").utf8).base64EncodedString() + "\n", mode: 0o600)
        let second = ConfigFixture.profile.replacingOccurrences(of: "  notifications:", with: "  correspondence:")
            .replacingOccurrences(of: "profiles:\n", with: "")
        let third = second.replacingOccurrences(of: "  correspondence:", with: "  other:").replacingOccurrences(of: "notifications.jwk", with: "other.jwk")
        let path = try fixture.write(ConfigFixture.profile + "\n" + second + "\n" + third)
        let loaded = try LoadedConfiguration.load(path: path, loader: KeyLoader(environment: [:]))
        #expect(loaded.problems.isEmpty, "\(loaded.problems)")
        func key(_ name: String) throws -> ObjectIdentifier { ObjectIdentifier(try #require(loaded.credentials[name]).privateKey.backing) }
        #expect(try key("notifications") == key("correspondence"))
        #expect(try key("notifications") != key("other"))
        let again = try LoadedConfiguration.load(path: path, loader: KeyLoader(environment: [:]))
        #expect(try ObjectIdentifier(#require(again.credentials["notifications"]).privateKey.backing) != key("notifications"))
    }

    @Test("an EncodedJwk file with mode 0600 loads, with the JWK's kid")
    func fileSource() throws {
        let fixture = try ConfigFixture()
        let (profile, path) = try profile(fixture, key: "      encoded_jwk_file: notifications.jwk")
        let credentials = try KeyLoader(environment: [:]).load(profile, file: path)
        #expect(credentials.kid == "test-kid")
        #expect(credentials.algorithm == .rs256)
        #expect(credentials.privateKey.bits == 2048)
        #expect(credentials.certificateChain == nil)
    }

    @Test(
        "a key file others may read, or its group write, or its group read unless root owns it, is refused with the chmod that fixes it",
        arguments: [(0o644, 0), (0o604, 0), (0o660, 0), (0o620, 0), (0o640, 65_534), (0o440, 65_534)])
    func filePermissions(_ mode: Int, _ owner: Int) throws {
        let fixture = try ConfigFixture()
        try FileManager.default.setAttributes([.posixPermissions: mode, .ownerAccountID: owner], ofItemAtPath: fixture.keyPath)
        let (profile, path) = try profile(fixture, key: "      encoded_jwk_file: notifications.jwk")
        let error = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(profile, file: path) }
        #expect(error?.code == .keyPermissions)
        #expect(error?.keyPath == "profiles.notifications.key.encoded_jwk_file")
        #expect(error?.message.contains("mode 0\(String(mode, radix: 8))") == true)
        #expect(error?.message.hasSuffix("run: chmod 600 \(fixture.keyPath)") == true, "\(error?.message ?? "")")
    }

    @Test("its group may read a key file root owns: root:maskinporten 0640 on a host, a Kubernetes Secret's root:<fsGroup> 0440", arguments: [0o640, 0o440])
    func groupReadableRootOwned(_ mode: Int) throws {
        let fixture = try ConfigFixture()
        try FileManager.default.setAttributes([.posixPermissions: mode, .ownerAccountID: 0], ofItemAtPath: fixture.keyPath)
        let (profile, path) = try profile(fixture, key: "      encoded_jwk_file: notifications.jwk")
        #expect(try KeyLoader(environment: [:]).load(profile, file: path).kid == "test-kid")
    }

    @Test("an EncodedJwk in an environment variable loads; a missing variable is named")
    func environmentSource() throws {
        let fixture = try ConfigFixture()
        let (profile, path) = try profile(fixture, key: "      encoded_jwk_env: NOTIFICATIONS_JWK")
        let credentials = try KeyLoader(environment: ["NOTIFICATIONS_JWK": Keys.rsa2048.encodedJwk(kid: "env-kid")]).load(profile, file: path)
        #expect(credentials.kid == "env-kid")
        let error = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(profile, file: path) }
        #expect(error?.message == "the environment variable NOTIFICATIONS_JWK is not set or empty")
        #expect(error?.keyPath == "profiles.notifications.key.encoded_jwk_env")
    }

    @Test("an EncodedJwk systemd credential loads from $CREDENTIALS_DIRECTORY")
    func credentialSource() throws {
        let fixture = try ConfigFixture()
        let credentials = try TemporaryDirectory(prefix: "credentials")
        try credentials.write("notifications-jwk", Keys.rsa2048.encodedJwk(kid: "cred-kid"), mode: 0o400)
        let (profile, path) = try profile(fixture, key: "      encoded_jwk_credential: notifications-jwk")
        let loaded = try KeyLoader(environment: ["CREDENTIALS_DIRECTORY": credentials.url.path]).load(profile, file: path)
        #expect(loaded.kid == "cred-kid")
        let error = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(profile, file: path) }
        #expect(error?.message.contains("$CREDENTIALS_DIRECTORY is not set") == true)
        let missing = #expect(throws: ConfigError.self) {
            try KeyLoader(environment: ["CREDENTIALS_DIRECTORY": fixture.directory.url.path + "/none"]).load(profile, file: path)
        }
        #expect(missing?.message.contains("does not exist") == true)
    }

    @Test("without $CREDENTIALS_DIRECTORY (check-config by hand) a credential is read from the file the unit loads it from")
    func unitCredentialFallback() throws {
        let fixture = try ConfigFixture()
        let root = try TemporaryDirectory(prefix: "units")
        let etc = root.path("etc")
        let lib = root.path("lib")
        for folder in [etc, lib, lib + "/maskinporten-broker.service.d", etc + "/maskinporten-broker.service.d"] {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let keyFile = try root.write("notifications.jwk", Keys.rsa2048.encodedJwk(kid: "unit-kid"), mode: 0o600)
        try root.write(
            "lib/maskinporten-broker.service",
            "[Unit]\nLoadCredential=ignored:/x\n[Service]\nLoadCredential=notifications-jwk:/packaged/path\nLoadCredential=other:/o\n", mode: 0o644)
        // A drop-in of the operator's moves the file; another clears and sets the list.
        try root.write("lib/maskinporten-broker.service.d/10-move.conf", "[Service]\nLoadCredential=notifications-jwk:\(keyFile)\n", mode: 0o644)
        #expect(ServiceUnit.load(searchPath: [etc, lib])?.credentials == ["notifications-jwk": keyFile, "other": "/o"])
        try root.write(
            "etc/maskinporten-broker.service.d/20-only.conf", "[Service]\nLoadCredential=\nLoadCredential=notifications-jwk:\(keyFile)\n", mode: 0o644)
        let found = try #require(ServiceUnit.load(searchPath: [etc, lib])?.credentials)
        #expect(found == ["notifications-jwk": keyFile])
        #expect(ServiceUnit.load(searchPath: [root.path("none")]) == nil)

        let (profile, path) = try profile(fixture, key: "      encoded_jwk_credential: notifications-jwk")
        let loader = KeyLoader(environment: [:], unitCredentials: found)
        #expect(loader.readsUnitCredentials)
        #expect(try loader.load(profile, file: path).kid == "unit-kid")
        // The unit's file is a key file like any other: others may not read it.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        #expect(throws: ConfigError(.keyPermissions, file: "", keyPath: "", "")) { try loader.load(profile, file: path) }
        let (other, _) = try self.profile(fixture, key: "      encoded_jwk_credential: elsewhere")
        let error = #expect(throws: ConfigError.self) { try loader.load(other, file: path) }
        #expect(
            error?.message
                == "$CREDENTIALS_DIRECTORY is not set, and maskinporten-broker.service loads no credential named elsewhere (it loads notifications-jwk): systemd sets it for units with LoadCredential=elsewhere:PATH; outside systemd use encoded_jwk_file"
        )
    }

    @Test("check-config by root checks the files serve reads as the unit's user, naming the user, what is in the way and the fix")
    func filesCheckedAsTheServiceUser() throws {
        let fixture = try ConfigFixture()
        let path = try fixture.write(ConfigFixture.profile)
        let keyFile = fixture.keyPath
        let unit = ServiceUnit(user: "nobody")
        #expect(unit.otherReader?.name == "nobody")
        let loader = KeyLoader(environment: [:])
        #expect(ConfigCheck.run(path: path, loader: loader).errors.isEmpty, "as root, without the unit, nothing is in the way")

        // The directory (0700, root's) keeps nobody from the configuration and the key alike.
        let blocked = ConfigCheck.run(path: path, loader: loader, unit: unit)
        #expect(blocked.errors.map(\.keyPath) == ["", "profiles.notifications.key.encoded_jwk_file"])
        let directory = fixture.directory.url.path
        #expect(
            blocked.errors.first?.message
                == "\(path) cannot be read by nobody, the user maskinporten-broker.service runs as: the directory \(directory) (root:root, mode 0700) does not let it through; keep the file in a directory it may enter, such as /etc/maskinporten-broker"
        )
        #expect(blocked.report.contains("files checked as nobody, the user maskinporten-broker.service runs as\n"), "\(blocked.report)")

        // A key only root may read (keygen's 0600) is named with the fix, the credential form too.
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory)
        let rootOnly = ConfigCheck.run(path: path, loader: loader, unit: unit)
        #expect(rootOnly.errors.map(\.code) == [.serviceAccess])
        #expect(
            rootOnly.errors.first?.message
                == "\(keyFile) cannot be read by nobody, the user maskinporten-broker.service runs as: it is \(keyFile) (root:root, mode 0600); run: chown root:nogroup \(keyFile) && chmod 0640 \(keyFile); or load it as the unit's credential (key: { encoded_jwk_credential: NAME } with LoadCredential=NAME:\(keyFile) in the unit), as the example configuration does"
        )
        #expect(rootOnly.report.contains("profile notifications\n"))
        #expect(rootOnly.report.hasSuffix("1 error: 1 in profiles\n"), "\(rootOnly.report)")

        // The fix it gives works, for the service's user and for the key file rule alike.
        #expect(chown(keyFile, 0, try #require(BrokerPOSIX.Accounts.gid(of: "nogroup"))) == 0)
        #expect(chmod(keyFile, 0o640) == 0)
        let fixed = ConfigCheck.run(path: path, loader: loader, unit: unit)
        #expect(fixed.errors.isEmpty, "\(fixed.errors)")
    }

    @Test(
        "a TPM key under the shipped unit: the unit hides /dev/tpmrm0 and check-config says to add the TPM drop-in; with the shipped drop-in the device is allowed and the tss group given; a socket the user may not open is named"
    )
    func tpmUnderTheUnit() throws {
        let fixture = try ConfigFixture()
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardizedFileURL.path
        let units = try TemporaryDirectory(prefix: "tpm-unit")
        try FileManager.default.createDirectory(atPath: units.path("maskinporten-broker.service.d"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repository + "/systemd/maskinporten-broker.service", toPath: units.path("maskinporten-broker.service"))
        let shipped = try #require(ServiceUnit.load(searchPath: [units.url.path]))
        #expect(shipped.privateDevices && shipped.devicePolicy == "closed")

        let path = try fixture.write(
            ConfigFixture.profile.replacingOccurrences(of: "encoded_jwk_file: notifications.jwk", with: "provider: tpm2\n      uri: \"handle:0x81000001\""))
        // The key does not load here (no TPM at /dev/tpmrm0): a profile problem of its own; the
        // unit's is found apart from it.
        let loaded = try LoadedConfiguration.load(path: path, loader: KeyLoader(environment: [:]))
        let hidden = loaded.tpmProblems(unit: shipped, reader: nil)
        #expect(
            hidden.map(\.message) == [
                "the unit has PrivateDevices=yes, which gives the service a /dev with no /dev/tpmrm0 in it; add the TPM drop-in: \(LoadedConfiguration.tpmDropIn)"
            ])
        #expect(hidden.first?.keyPath == "profiles.notifications.key")

        try FileManager.default.copyItem(atPath: repository + "/systemd/drop-ins/tpm.conf", toPath: units.path("maskinporten-broker.service.d/tpm.conf"))
        let withDropIn = try #require(ServiceUnit.load(searchPath: [units.url.path]))
        #expect(!withDropIn.privateDevices && withDropIn.deviceAllow == ["/dev/tpmrm0"] && withDropIn.supplementaryGroups == ["tss"])
        #expect(loaded.tpmProblems(unit: withDropIn, reader: nil).isEmpty)
        // DevicePolicy=closed with the device not named is refused too.
        var closed = withDropIn
        closed.deviceAllow = []
        #expect(
            loaded.tpmProblems(unit: closed, reader: nil).first?.message.hasPrefix("the unit's DevicePolicy=closed lets the service open no /dev/tpmrm0")
                == true)

        // A simulator's socket (root's, 0755 by umask) that the service's user may not connect to.
        let socketDirectory = try TemporaryDirectory(prefix: "tpm-socket")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: socketDirectory.url.path)
        let socket = try socketDirectory.write("sock", "", mode: 0o644)
        let swtpm = try fixture.write(
            ConfigFixture.profile.replacingOccurrences(
                of: "encoded_jwk_file: notifications.jwk", with: "provider: tpm2\n      uri: \"handle:0x81000001\"\n      tcti: \"swtpm:path=\(socket)\""))
        let nobody = try #require(ServiceUnit(user: "nobody").otherReader)
        let refused = try LoadedConfiguration.load(path: swtpm, loader: KeyLoader(environment: [:])).tpmProblems(unit: withDropIn, reader: nobody)
        #expect(
            refused.map(\.message) == [
                "\(socket) cannot be opened by nobody, the user maskinporten-broker.service runs as: it is \(socket) (root:root, mode 0644); give the service the group in a drop-in: SupplementaryGroups=root"
            ])
        #expect(chmod(socket, 0o666) == 0)
        #expect(try LoadedConfiguration.load(path: swtpm, loader: KeyLoader(environment: [:])).tpmProblems(unit: withDropIn, reader: nobody).isEmpty)
    }

    @Test("keys: several sources make one key set, oldest first, each entry's kid its own; a kid twice, or more than 5 keys together, is refused")
    func keyList() throws {
        let fixture = try ConfigFixture()
        try fixture.directory.write("other.jwk", Keys.other2048.encodedJwk(kid: "from-file"), mode: 0o600)
        let (profile, path) = try self.profile(
            fixture, keys: "      - encoded_jwk_file: notifications.jwk\n      - { encoded_jwk_file: other.jwk, kid: renamed }")
        #expect(profile.keySource.configKey == "keys" && profile.keySource.sources.count == 2)
        let loaded = try KeyLoader(environment: [:]).load(profile, file: path)
        #expect(loaded.keys.map(\.kid) == ["test-kid", "renamed"] && loaded.kid == "renamed", "the last is the newest")
        let report = ConfigCheck.run(path: path, loader: KeyLoader(environment: [:]))
        #expect(report.errors.isEmpty && report.report.contains("renamed, RSA 2048 bits, RS256 (newest)"), "\(report.report)")

        let (twice, twicePath) = try self.profile(fixture, keys: "      - encoded_jwk_file: notifications.jwk\n      - encoded_jwk_file: notifications.jwk")
        let error = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(twice, file: twicePath) }
        #expect(error?.keyPath == "profiles.notifications.keys" && error?.message.contains("two of the keys have kid") == true, "\(String(describing: error))")
        let set = "{\"keys\":[\(Keys.rsa2048.jwkJSON(kid: "a")),\(Keys.other2048.jwkJSON(kid: "b")),\(Keys.rsa2048.jwkJSON(kid: "c"))]}"
        try fixture.directory.write("three.jwk", Data(set.utf8).base64EncodedString(), mode: 0o600)
        let (many, manyPath) = try self.profile(fixture, keys: "      - encoded_jwk_file: three.jwk\n      - encoded_jwk_file: three.jwk")
        let tooMany = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(many, file: manyPath) }
        #expect(tooMany?.message.contains("the keys hold 6 keys together; Maskinporten holds at most 5") == true, "\(String(describing: tooMany))")
    }

    @Test("kid: override, selection from a JWK Set, and a JWK without kid")
    func kidHandling() throws {
        let fixture = try ConfigFixture(kid: nil)
        let (plain, path) = try profile(fixture, key: "      encoded_jwk_file: notifications.jwk")
        let error = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(plain, file: path) }
        #expect(error?.message.contains("the JWK has no kid") == true)
        let (overridden, path2) = try profile(fixture, key: "      encoded_jwk_file: notifications.jwk\n      kid: registered-kid")
        #expect(try KeyLoader(environment: [:]).load(overridden, file: path2).kid == "registered-kid")
        let set = "{\"keys\":[\(Keys.other2048.jwkJSON(kid: "old")),\(Keys.rsa2048.jwkJSON(kid: "new"))]}"
        try fixture.directory.write("set.jwk", Data(set.utf8).base64EncodedString(), mode: 0o600)
        let (chosen, path3) = try profile(fixture, key: "      encoded_jwk_file: set.jwk\n      kid: new")
        #expect(try KeyLoader(environment: [:]).load(chosen, file: path3).kid == "new")
        // Without kid: every key of the set, oldest first; the newest is the default.
        let (whole, path4) = try profile(fixture, key: "      encoded_jwk_file: set.jwk")
        let both = try KeyLoader(environment: [:]).load(whole, file: path4)
        #expect(both.keys.map(\.kid) == ["old", "new"])
        #expect(both.kid == "new")
        // Each key is checked, and named when it is wrong; kids are unique; at most five keys.
        let publicOld = Keys.other2048.jwkJSON(kid: "old", dropping: ["d", "p", "q", "dp", "dq", "qi"])
        try fixture.directory.write(
            "bad.jwk", Data("{\"keys\":[\(publicOld),\(Keys.rsa2048.jwkJSON(kid: "new"))]}".utf8).base64EncodedString(), mode: 0o600)
        let (bad, path5) = try profile(fixture, key: "      encoded_jwk_file: bad.jwk")
        let badError = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(bad, file: path5) }
        #expect(badError?.message.hasPrefix("the key with kid old in the JWK Set: the JWK is a public key") == true, "\(badError?.message ?? "")")
        try fixture.directory.write(
            "twice.jwk",
            Data("{\"keys\":[\(Keys.other2048.jwkJSON(kid: "same")),\(Keys.rsa2048.jwkJSON(kid: "same"))]}".utf8).base64EncodedString(), mode: 0o600)
        let (twice, path6) = try profile(fixture, key: "      encoded_jwk_file: twice.jwk")
        let twiceError = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(twice, file: path6) }
        #expect(twiceError?.message == "the JWK Set holds two keys with kid same; every key needs its own")
        let six = (1...6).map { Keys.rsa2048.jwkJSON(kid: "k\($0)") }.joined(separator: ",")
        try fixture.directory.write("six.jwk", Data("{\"keys\":[\(six)]}".utf8).base64EncodedString(), mode: 0o600)
        let (many, path7) = try profile(fixture, key: "      encoded_jwk_file: six.jwk")
        let manyError = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(many, file: path7) }
        #expect(manyError?.message == "the JWK Set holds 6 keys; Maskinporten holds at most 5 per client: remove the oldest")
    }

    @Test("the JWK's alg is used unless configured, and a disagreement is refused")
    func algorithmFromJWK() throws {
        let fixture = try ConfigFixture()
        try fixture.directory.write("rs512.jwk", Data(Keys.rsa2048.jwkJSON(alg: "RS512").utf8).base64EncodedString(), mode: 0o600)
        let (fromJWK, path) = try profile(fixture, key: "      encoded_jwk_file: rs512.jwk")
        #expect(try KeyLoader(environment: [:]).load(fromJWK, file: path).algorithm == .rs512)
        let (conflict, path2) = try profile(fixture, key: "      encoded_jwk_file: rs512.jwk", extra: "\n    algorithm: RS256")
        let error = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(conflict, file: path2) }
        #expect(error?.keyPath == "profiles.notifications.algorithm")
        #expect(error?.message.contains("marked for RS512") == true)
    }

    @Test("a bad key in the file is reported at its key path with the parser's reason")
    func badKeyFile() throws {
        let fixture = try ConfigFixture()
        try fixture.directory.write("small.jwk", try TestKey.rsa(bits: 1024).encodedJwk(), mode: 0o600)
        let (profile, path) = try profile(fixture, key: "      encoded_jwk_file: small.jwk")
        let error = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(profile, file: path) }
        #expect(error?.code == .invalidKey)
        #expect(error?.cryptoCode == .keyTooSmall)
        #expect(error?.description == "\(path): profiles.notifications.key.encoded_jwk_file: the RSA key has 1024 bits; at least 2048 are required")
    }

    // MARK: - Business certificates

    @Test("a certificate and its key load; a mismatched, expired or out-of-order chain is refused")
    func certificateSource() async throws {
        let fixture = try ConfigFixture()
        let dir = fixture.directory
        try await Command.openssl(
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir.path("ca.key"), "-out", dir.path("ca.pem"), "-days", "30", "-subj", "/CN=Test CA")
        try await Command.openssl("req", "-new", "-key", Keys.rsa2048.pkcs8Path, "-out", dir.path("leaf.csr"), "-subj", "/CN=Leaf/serialNumber=991825827")
        try await Command.openssl(
            "x509", "-req", "-in", dir.path("leaf.csr"), "-CA", dir.path("ca.pem"), "-CAkey", dir.path("ca.key"), "-CAcreateserial", "-out",
            dir.path("leaf.pem"), "-days", "10")
        let leaf = try String(contentsOfFile: dir.path("leaf.pem"), encoding: .utf8)
        let ca = try String(contentsOfFile: dir.path("ca.pem"), encoding: .utf8)
        try dir.write("chain.pem", leaf + ca, mode: 0o644)
        try dir.write("reversed.pem", ca + leaf, mode: 0o644)
        try dir.write("key.pem", Data(contentsOf: URL(fileURLWithPath: Keys.rsa2048.pkcs8Path)), mode: 0o600)
        try dir.write("other.pem", Data(contentsOf: URL(fileURLWithPath: Keys.other2048.pkcs8Path)), mode: 0o600)

        let (good, path) = try profile(fixture, key: "      certificate_file: chain.pem\n      private_key_file: key.pem")
        let credentials = try KeyLoader(environment: [:]).load(good, file: path)
        #expect(credentials.kid == nil)
        #expect(credentials.certificateChain?.count == 2)
        #expect(credentials.certificateChain?.first?.subjectSerialNumber == "991825827")

        let (mismatch, path2) = try profile(fixture, key: "      certificate_file: chain.pem\n      private_key_file: other.pem")
        let mismatchError = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(mismatch, file: path2) }
        #expect(mismatchError?.cryptoCode == .certificateKeyMismatch)
        #expect(mismatchError?.keyPath == "profiles.notifications.key.certificate_file")

        let (reversed, path3) = try profile(fixture, key: "      certificate_file: reversed.pem\n      private_key_file: key.pem")
        let orderError = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(reversed, file: path3) }
        #expect(orderError?.cryptoCode == .certificateKeyMismatch, "the leaf must come first: \(orderError?.message ?? "")")

        let expired = #expect(throws: ConfigError.self) {
            try KeyLoader(environment: [:], now: Date().addingTimeInterval(20 * 86_400)).load(good, file: path)
        }
        #expect(expired?.message.contains("expired on") == true)

        try dir.write("gapped.pem", leaf + leaf, mode: 0o644)
        let (gapped, path4) = try profile(fixture, key: "      certificate_file: gapped.pem\n      private_key_file: key.pem")
        let gapError = #expect(throws: ConfigError.self) { try KeyLoader(environment: [:]).load(gapped, file: path4) }
        #expect(gapError?.message.contains("out of order") == true)
    }
}
