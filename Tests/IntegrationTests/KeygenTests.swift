import BrokerTestSupport
import Foundation
import Testing

/// `keygen` as a new user runs it: the key it writes is used by a profile, its printed public
/// part is what gets registered, and openssl (not the broker) checks the grants it signs.
@Suite("keygen", .sharedKeys)
struct KeygenTests {
    static let clientID = "2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17"

    /// A profile using `keyFile` against an emulator at `emulatorURL` (or tt02).
    static func config(in directory: TemporaryDirectory, keyFile: String, emulatorURL: String? = nil, kid: String? = nil) throws -> String {
        let environment =
            emulatorURL.map { "environments:\n  local:\n    maskinporten_issuer: \($0)/\n    altinn_platform: \($0)\n" } ?? ""
        return try directory.write(
            "broker.yaml",
            """
            \(environment)profiles:
              notifications:
                environment: \(emulatorURL == nil ? "tt02" : "local")
                client_id: \(clientID)
                scopes: [altinn:serviceowner/notifications.create]
                key:
                  encoded_jwk_file: \(keyFile)
            \(kid.map { "      kid: \($0)" } ?? "")
            """, mode: 0o644)
    }

    /// The public key openssl builds from a JWK's n and e by itself (`asn1parse -genconf`), so
    /// that the check does not rest on the broker's own conversion.
    static func opensslPublicKey(n: String, e: String, in directory: TemporaryDirectory) async throws -> String {
        func hex(_ member: String) throws -> String {
            try TestKey.decodeBase64url(member).map { String(format: "%02X", $0) }.joined()
        }
        let genconf = try directory.write(
            "pub.cnf",
            """
            asn1=SEQUENCE:pubkeyinfo
            [pubkeyinfo]
            algorithm=SEQUENCE:rsa_alg
            pubkey=BITWRAP,SEQUENCE:rsapubkey
            [rsa_alg]
            algorithm=OID:rsaEncryption
            parameter=NULL
            [rsapubkey]
            n=INTEGER:0x\(try hex(n))
            e=INTEGER:0x\(try hex(e))
            """)
        try await Command.openssl("asn1parse", "-genconf", genconf, "-out", directory.path("pub.der"), "-noout")
        try await Command.openssl("pkey", "-pubin", "-inform", "DER", "-in", directory.path("pub.der"), "-out", directory.path("pub.pem"))
        return directory.path("pub.pem")
    }

    /// `openssl dgst -verify` of a compact JWS with the PEM public key at `publicKey`.
    static func opensslVerify(jws: String, publicKey: String, in directory: TemporaryDirectory) async throws -> String {
        let pieces = jws.split(separator: ".").map(String.init)
        let message = try directory.write("grant.signed", Data("\(pieces[0]).\(pieces[1])".utf8))
        let signature = try directory.write("grant.sig", try TestKey.decodeBase64url(pieces[2]))
        return try await Command.openssl("dgst", "-sha256", "-verify", publicKey, "-signature", signature, message).output
    }

    static func json(_ text: String) throws -> Any { try JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// The members of the private JWK(s) in an EncodedJwk file.
    static func privateKeys(_ path: String) throws -> [[String: Any]] {
        let text = try String(contentsOfFile: path, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let decoded = try #require(Data(base64Encoded: text))
        let object = try #require(try json(String(decoding: decoded, as: UTF8.self)) as? [String: Any])
        return (object["keys"] as? [[String: Any]]) ?? [object]
    }

    @Test("the key keygen makes is accepted by the emulator with only its printed public part, and openssl verifies its grants")
    func registeredAndAccepted() async throws {
        let directory = try TemporaryDirectory(prefix: "keygen")
        let made = try await BrokerExecutable.run(["keygen", "--out", directory.path("notifications.jwk")])
        #expect(made.status == 0, "\(made.errorOutput)")

        // stdout is exactly a JSON array holding one public JWK: what Samarbeidsportalen takes.
        let printed = try #require(try Self.json(made.output) as? [[String: String]])
        #expect(printed.count == 1)
        let jwk = printed[0]
        #expect(Set(jwk.keys) == ["kty", "kid", "alg", "use", "n", "e"])
        #expect(jwk["kty"] == "RSA" && jwk["alg"] == "RS256" && jwk["use"] == "sig")
        let kid = try #require(jwk["kid"])
        #expect(kid.range(of: #"^\d{4}-\d{2}-\d{2}-[A-Za-z0-9_-]{8}$"#, options: .regularExpression) != nil, "\(kid)")

        // The file: mode 0600, the private JWK with the same kid and when it was made.
        let info = try FileManager.default.attributesOfItem(atPath: directory.path("notifications.jwk"))
        #expect((info[.posixPermissions] as? Int) == 0o600)
        let stored = try #require(try Self.privateKeys(directory.path("notifications.jwk")).first)
        #expect(stored["kid"] as? String == kid)
        #expect(stored["n"] as? String == jwk["n"])
        let madeAt = try #require(stored["iat"] as? Int)
        #expect(abs(Double(madeAt) - Date().timeIntervalSince1970) < 60)
        // No private member reaches either stream.
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            let value = try #require(stored[member] as? String)
            #expect(!made.output.contains(value.prefix(24)) && !made.errorOutput.contains(value.prefix(24)), "\(member) printed")
        }

        // Registered with the public part only, the key's grants get tokens.
        let emulator = try RunningProcess(try BrokerExecutable.path, ["emulator", "--listen", "127.0.0.1:0"])
        // Killed when the test ends and the process object goes.
        let emulatorURL = String(try await emulator.waitForOutput(containing: "control API:").split(separator: "\n")[0].split(separator: " ").last!)
        let registration = try await Command.run(
            "curl",
            [
                "-sS", "--fail", "-X", "POST", "--data",
                #"{"client_id":"\#(Self.clientID)","scopes":["altinn:serviceowner/notifications.create"],"keys":\#(made.output)}"#,
                "\(emulatorURL)/_emulator/clients",
            ])
        #expect(registration.status == 0, "\(registration.errorOutput)")
        let config = try Self.config(in: directory, keyFile: "notifications.jwk", emulatorURL: emulatorURL)
        let grant = try await BrokerExecutable.run(["sign-grant", "notifications", "--config", config])
        #expect(grant.status == 0, "\(grant.errorOutput)")
        let jws = grant.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let answer = try await Command.run(
            "curl", ["-sS", "-d", "grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer", "-d", "assertion=\(jws)", "\(emulatorURL)/token"])
        let token = try #require(try Self.json(answer.output) as? [String: Any], "\(answer.output)")
        #expect(token["access_token"] is String, "\(answer.output)")

        // openssl checks the grant with a public key it built from the printed n and e.
        let publicKey = try await Self.opensslPublicKey(n: try #require(jwk["n"]), e: try #require(jwk["e"]), in: directory)
        #expect(try await Self.opensslVerify(jws: jws, publicKey: publicKey, in: directory).contains("Verified OK"))
    }

    @Test("--pem prints the public key as PEM, and openssl verifies grants with it", arguments: [2048, 3072])
    func pem(bits: Int) async throws {
        let directory = try TemporaryDirectory(prefix: "keygen")
        let made = try await BrokerExecutable.run(["keygen", "--out", directory.path("k.jwk"), "--pem", "--bits", "\(bits)", "--kid", "pem-kid"])
        #expect(made.status == 0, "\(made.errorOutput)")
        #expect(made.output.hasPrefix("-----BEGIN PUBLIC KEY-----\n") && made.output.hasSuffix("-----END PUBLIC KEY-----\n"), "\(made.output)")
        let publicKey = try directory.write("printed.pem", made.output)
        #expect(try await Command.openssl("pkey", "-pubin", "-in", publicKey, "-noout", "-text").output.contains("Public-Key: (\(bits) bit)"))
        let config = try Self.config(in: directory, keyFile: "k.jwk")
        let grant = try await BrokerExecutable.run(["sign-grant", "notifications", "--config", config])
        #expect(grant.status == 0, "\(grant.errorOutput)")
        let jws = grant.output.trimmingCharacters(in: .whitespacesAndNewlines)
        let headerText = String(decoding: try TestKey.decodeBase64url(String(jws.split(separator: ".")[0])), as: UTF8.self)
        let header = try #require(try Self.json(headerText) as? [String: Any])
        #expect(header["kid"] as? String == "pem-kid")
        #expect(try await Self.opensslVerify(jws: jws, publicKey: publicKey, in: directory).contains("Verified OK"))
    }

    @Test("keygen --from turns a key made elsewhere (PEM, PKCS#1 or PKCS#8, or a private JWK) into the EncodedJwk, and refuses what is no private key")
    func fromExistingKey() async throws {
        let key = SharedKeys.key("harness")
        let directory = try TemporaryDirectory(prefix: "keygen-from")
        let n = try #require(key.jwkMembers()["n"])

        // An RSA key as PEM, in both forms: the kid given, the public part printed, the file 0600.
        for (name, pem) in [("pkcs8", key.pkcs8Path), ("pkcs1", try #require(key.pkcs1Path))] {
            let out = directory.path("\(name).jwk")
            let made = try await BrokerExecutable.run(["keygen", "--from", pem, "--out", out, "--kid", "registered"])
            #expect(made.status == 0, "\(made.errorOutput)")
            #expect(made.output.hasPrefix("[{") && made.output.contains("\"n\":\"\(n)\"") && !made.output.contains("\"d\""), "\(made.output)")
            #expect(made.errorOutput.contains("wrote \(out) (mode 0600) from \(pem): RSA 2048 bits, kid registered"), "\(made.errorOutput)")
            let written = try Self.privateKeys(out)
            #expect(written.map { $0["kid"] as? String } == ["registered"])
            #expect(written.first?["n"] as? String == n && written.first?["d"] != nil && written.first?["use"] as? String == "sig")
            #expect((try FileManager.default.attributesOfItem(atPath: out)[.posixPermissions] as? Int) == 0o600)
        }

        // A private JWK as a JWK generator writes it: its own kid and alg are kept, and the
        // result signs grants openssl verifies with the original public key.
        let jwkFile = try directory.write("mkjwk.json", key.jwkJSON(kid: "mkjwk-kid", alg: "RS384"), mode: 0o600)
        let fromJWK = try await BrokerExecutable.run(["keygen", "--from", jwkFile, "--out", directory.path("jwk.jwk")])
        #expect(fromJWK.status == 0, "\(fromJWK.errorOutput)")
        #expect(try Self.privateKeys(directory.path("jwk.jwk")).first?["kid"] as? String == "mkjwk-kid")
        #expect(try Self.privateKeys(directory.path("jwk.jwk")).first?["alg"] as? String == "RS384")
        let config = try Self.config(in: directory, keyFile: "jwk.jwk")
        let grant = try await BrokerExecutable.run(["sign-grant", "notifications", "--config", config])
        #expect(grant.status == 0, "\(grant.errorOutput)")
        let pieces = grant.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ".").map(String.init)
        let signature = try directory.write("grant.sig", try TestKey.decodeBase64url(pieces[2]))
        let message = try directory.write("grant.signed", Data("\(pieces[0]).\(pieces[1])".utf8))
        let verified = try await Command.openssl("dgst", "-sha384", "-verify", key.publicPath, "-signature", signature, message)
        #expect(verified.output.contains("Verified OK"), "\(verified.output)")

        // What is no private key is named; nothing is written; the existing file is kept.
        let publicArray = try directory.write("public.json", "[\(key.jwkJSON(kid: "k", dropping: ["d", "p", "q", "dp", "dq", "qi"]))]")
        let encoded = try directory.write("already.jwk", key.encodedJwk(kid: "k"))
        let cases: [([String], String)] = [
            (["--from", publicArray], "this is a JSON array of public keys"),
            (["--from", key.publicPath], "a public key"),
            (["--from", encoded], "is an EncodedJwk already: give it to the profile as it is"),
            (["--from", key.pkcs8Path, "--bits", "4096"], "--bits is for a new key"),
            (["--from", directory.path("none.pem")], "cannot be read"),
        ]
        for (arguments, expected) in cases {
            let refused = try await BrokerExecutable.run(["keygen", "--out", directory.path("refused.jwk")] + arguments)
            #expect(refused.status != 0, "\(arguments)")
            #expect(refused.errorOutput.contains(expected), "\(arguments): \(refused.errorOutput)")
            #expect(!FileManager.default.fileExists(atPath: directory.path("refused.jwk")), "\(arguments)")
        }
        let again = try await BrokerExecutable.run(["keygen", "--from", key.pkcs8Path, "--out", directory.path("pkcs8.jwk")])
        #expect(again.errorOutput.contains("keygen never overwrites a key"), "\(again.errorOutput)")
        let twice = try await BrokerExecutable.run(["keygen", "--from", key.pkcs8Path, "--out", directory.path("pkcs8.jwk"), "--add-to", "--kid", "other"])
        #expect(twice.errorOutput.contains("already holds this key (kid registered)"), "\(twice.errorOutput)")
    }

    @Test(
        "keygen --tpm2: the key is made in the TPM, the file holds it wrapped (no private part), the printed JWK is its public half as openssl reads it from the TPM, and check-config names where it lives; --tpm2-persist keeps it at a handle instead"
    )
    func tpm2() async throws {
        let tpm = try SoftwareTPM()
        let directory = try TemporaryDirectory(prefix: "keygen-tpm")
        let out = directory.path("notifications.tss2.pem")
        let made = try await BrokerExecutable.run(["keygen", "--tpm2", "--tcti", tpm.tcti, "--out", out])
        #expect(made.status == 0, "\(made.errorOutput)")
        let printed = try #require(try Self.json(made.output) as? [[String: Any]])
        #expect(printed.count == 1 && printed[0]["kty"] as? String == "RSA" && printed[0]["d"] == nil && printed[0]["p"] == nil, "\(made.output)")
        let kid = try #require(printed[0]["kid"] as? String)
        let file = try String(contentsOfFile: out, encoding: .utf8)
        #expect(file.hasPrefix("-----BEGIN TSS2 PRIVATE KEY-----"))
        var status = stat()
        #expect(stat(out, &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(made.errorOutput.contains("key: { provider: tpm2, uri: \"file:\(out)\", kid: \(kid) }"), "\(made.errorOutput)")

        // The public half the TPM gives openssl is the one printed.
        let fromTPM = try await Command.run(
            "openssl", ["pkey", "-provider", "tpm2", "-provider", "default", "-in", out, "-pubout"],
            environment: ProcessInfo.processInfo.environment.merging(["TPM2OPENSSL_TCTI": tpm.tcti]) { $1 })
        let fromJWK = try await Self.opensslPublicKey(n: printed[0]["n"] as! String, e: printed[0]["e"] as! String, in: directory)
        #expect(fromTPM.output == (try String(contentsOfFile: fromJWK, encoding: .utf8)), "\(fromTPM.errorOutput)")

        let again = try await BrokerExecutable.run(["keygen", "--tpm2", "--tcti", tpm.tcti, "--out", out])
        #expect(again.status == 1 && again.errorOutput.contains("exists; keygen never overwrites a key"), "\(again.errorOutput)")

        // check-config, in a process of its own, loads it through the provider.
        func configuration(_ name: String, key: String) throws -> String {
            try directory.write(
                name,
                """
                profiles:
                  notifications:
                    environment: tt02
                    client_id: \(Self.clientID)
                    scopes: [altinn:serviceowner/notifications.create]
                    key: \(key)
                """, mode: 0o644)
        }
        let config = try configuration("broker.yaml", key: #"{ provider: tpm2, uri: "file:\#(out)", tcti: "\#(tpm.tcti)" }"#)
        let check = try await BrokerExecutable.run(["check-config", "--config", config])
        #expect(check.output.contains("RSA 2048 bits, in the TPM (tpm2 provider, file:\(out), \(tpm.tcti))"), "\(check.output) \(check.errorOutput)")

        // --tpm2-persist: kept in the TPM at a handle, no file; the profile names the handle. Made
        // by tpm2-tools, which expect a resource manager, as /dev/tpmrm0 is.
        let managed = try SoftwareTPM(resourceManager: true)
        let environment = ProcessInfo.processInfo.environment.merging(managed.environment) { $1 }
        let persisted = try await BrokerExecutable.run(["keygen", "--tpm2-persist", "0x81000005", "--tcti", managed.tcti], environment: environment)
        #expect(persisted.status == 0, "\(persisted.errorOutput)")
        let persistedKid = try #require((try Self.json(persisted.output) as? [[String: Any]])?.first?["kid"] as? String)
        #expect(persisted.errorOutput.contains("key: { provider: tpm2, uri: \"handle:0x81000005\", kid: \(persistedKid) }"), "\(persisted.errorOutput)")
        let handleConfig = try configuration(
            "handle.yaml", key: #"{ provider: tpm2, uri: "handle:0x81000005", tcti: "\#(managed.tcti)", kid: \#(persistedKid) }"#)
        let handleCheck = try await BrokerExecutable.run(["check-config", "--config", handleConfig], environment: environment)
        #expect(
            handleCheck.status == 0 && handleCheck.output.contains("in the TPM (tpm2 provider, handle:0x81000005, \(managed.tcti))"),
            "\(handleCheck.output) \(handleCheck.errorOutput)")
        // The public half the TPM gives openssl from the handle is the one printed.
        let fromHandle = try await Command.run(
            "openssl", ["pkey", "-provider", "tpm2", "-provider", "default", "-in", "handle:0x81000005", "-pubout"],
            environment: environment.merging(["TPM2OPENSSL_TCTI": managed.tcti]) { $1 })
        let persistedJWK = try #require((try Self.json(persisted.output) as? [[String: Any]])?.first)
        let printedPEM = try await Self.opensslPublicKey(n: persistedJWK["n"] as! String, e: persistedJWK["e"] as! String, in: directory)
        #expect(fromHandle.output == (try String(contentsOfFile: printedPEM, encoding: .utf8)), "\(fromHandle.errorOutput)")
        let taken = try await BrokerExecutable.run(["keygen", "--tpm2-persist", "0x81000005", "--tcti", managed.tcti], environment: environment)
        #expect(taken.status == 1 && taken.errorOutput.contains("the TPM already has a key at 0x81000005: choose another handle"), "\(taken.errorOutput)")
        let wrong = try await BrokerExecutable.run(["keygen", "--tpm2-persist", "81000005", "--tcti", managed.tcti], environment: environment)
        #expect(wrong.status == 1 && wrong.errorOutput.contains("takes a persistent handle from 0x81000000 to 0x81ffffff"), "\(wrong.errorOutput)")
        let both = try await BrokerExecutable.run(["keygen", "--tpm2-persist", "0x81000006", "--out", out])
        #expect(both.status != 0 && both.errorOutput.contains("--tpm2-persist keeps the key in the TPM and writes no file"), "\(both.errorOutput)")
    }

    @Test("keygen never overwrites; --force replaces; --add-to appends up to Maskinporten's 5 keys")
    func fileRules() async throws {
        let directory = try TemporaryDirectory(prefix: "keygen")
        let path = directory.path("k.jwk")
        #expect(try await BrokerExecutable.run(["keygen", "--out", path, "--kid", "one"]).status == 0)
        let original = try Data(contentsOf: URL(fileURLWithPath: path))

        let again = try await BrokerExecutable.run(["keygen", "--out", path])
        #expect(again.status == 1)
        #expect(
            again.errorOutput
                == "error: \(path) exists; keygen never overwrites a key: choose another --out, add the key to it with --add-to, or replace it with --force\n")
        #expect(again.output.isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == original)

        for kid in ["two", "three", "four", "five"] {
            let added = try await BrokerExecutable.run(["keygen", "--out", path, "--add-to", "--kid", kid])
            #expect(added.status == 0, "\(added.errorOutput)")
        }
        #expect(try Self.privateKeys(path).map { $0["kid"] as? String } == ["one", "two", "three", "four", "five"])
        let info = try FileManager.default.attributesOfItem(atPath: path)
        #expect((info[.posixPermissions] as? Int) == 0o600)
        let sixth = try await BrokerExecutable.run(["keygen", "--out", path, "--add-to"])
        #expect(sixth.status == 1)
        #expect(
            sixth.errorOutput
                == "error: \(path) already holds 5 keys, Maskinporten's limit for one client: remove the oldest from the file and from Samarbeidsportalen first\n"
        )
        let duplicate = try await BrokerExecutable.run(["keygen", "--out", directory.path("d.jwk"), "--add-to", "--kid", "x"])
        #expect(duplicate.status == 0)
        #expect(
            try await BrokerExecutable.run(["keygen", "--out", directory.path("d.jwk"), "--add-to", "--kid", "x"]).errorOutput.contains(
                "already holds a key with kid x"))

        // Without kid, check-config lists every key of the set, the newest marked.
        let whole = try Self.config(in: directory, keyFile: "k.jwk")
        let listed = try await BrokerExecutable.run(["check-config", "--config", whole])
        #expect(listed.status == 0, "\(listed.output)\(listed.errorOutput)")
        #expect(listed.output.contains("  keys:         5 in the JWK Set, oldest first;"), "\(listed.output)")
        #expect(listed.output.contains("  kid:          five, RSA 2048 bits, RS256, made "), "\(listed.output)")
        #expect(listed.output.contains(" ago) (newest)\n"), "\(listed.output)")
        // A profile names one key of the set; check-config shows when it was made.
        let config = try Self.config(in: directory, keyFile: "k.jwk", kid: "three")
        let check = try await BrokerExecutable.run(["check-config", "--config", config])
        #expect(check.status == 0, "\(check.output)\(check.errorOutput)")
        let today = ISO8601DateFormatter.string(from: Date(), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate])
        #expect(check.output.contains("  kid:          three, made \(today) (0 days ago)\n"), "\(check.output)")

        #expect(try await BrokerExecutable.run(["keygen", "--out", path, "--force", "--kid", "fresh"]).status == 0)
        #expect(try Self.privateKeys(path).map { $0["kid"] as? String } == ["fresh"])

        for bad in [["--bits", "1024"], ["--kid", "with space"], ["--add-to", "--force"]] {
            let refused = try await BrokerExecutable.run(["keygen", "--out", directory.path("bad.jwk")] + bad)
            #expect(refused.status != 0, "\(bad)")
            #expect(!FileManager.default.fileExists(atPath: directory.path("bad.jwk")), "\(bad)")
        }
        // Nothing but the key files is left in the directory: no temporary files.
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path("")).filter { $0.hasPrefix(".") }.isEmpty)
    }
}
