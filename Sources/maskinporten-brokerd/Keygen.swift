import ArgumentParser
import BrokerClient
import BrokerConfig
import BrokerCrypto
import FoundationEssentials

/// `keygen`: makes a Maskinporten key here, so that the private key never passes through a
/// browser or a website: the EncodedJwk goes to a file only its owner may read, and only the
/// public part reaches the terminal.
struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make an RSA key for a Maskinporten client: the EncodedJwk to a file, the public part to stdout.",
        discussion: """
            Writes the EncodedJwk (Base64 of the private JWK, with kid, alg RS256, use sig and the time it was made) \
            to --out, mode 0600; never overwrites an existing file unless --force is given. With --add-to, adds the new \
            key to the keys already in the file (a JWK Set, oldest first, at most 5: Maskinporten's limit per client), \
            for rotating by hand. Prints the public JWK inside a JSON array, which Samarbeidsportalen takes as it is \
            ("Egne public nøkler"), or with --pem the public key as PEM. No private member is ever printed.
            With --from, the key is not made but taken from FILE: an RSA private key as PEM, or a private JWK \
            as JSON (as JWK generators make it); its kid is kept unless --kid is given.
            With --tpm2, the key is made inside the TPM (OpenSSL's tpm2 provider: apt install tpm2-openssl) and \
            --out gets the key wrapped by the TPM (TSS2 PRIVATE KEY), of no use on any other machine; --tcti \
            chooses the TPM (default device:/dev/tpmrm0). With --tpm2-persist HANDLE instead of --out, the key made \
            in the TPM is made persistent there at HANDLE (with tpm2_evictcontrol: apt install tpm2-tools), and no \
            file is written.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The EncodedJwk file to write.", valueName: "file"))
    var out: String?

    @Option(name: .long, help: ArgumentHelp("Key size: 2048 (default), 3072 or 4096.", valueName: "bits"))
    var bits: Int?

    @Option(
        name: .long,
        help: ArgumentHelp("Take the key from this file instead of making one: an RSA private key as PEM, or a private JWK as JSON.", valueName: "file"))
    var from: String?

    @Option(name: .long, help: ArgumentHelp("The key id (default: the day and the start of the key's thumbprint, e.g. 2026-11-29-Xy7aBc3d).", valueName: "kid"))
    var kid: String?

    @Flag(name: .long, help: "Make the key inside the TPM; --out gets the TPM-wrapped key file.")
    var tpm2 = false

    @Option(name: .long, help: ArgumentHelp("The TPM, for --tpm2 (default device:/dev/tpmrm0; swtpm:path=SOCKET for the simulator).", valueName: "tcti"))
    var tcti: String?

    @Option(
        name: .customLong("tpm2-persist"),
        help: ArgumentHelp("Make the key in the TPM persistent at this handle (0x81000001, say) instead of writing a file.", valueName: "handle"))
    var tpm2Persist: String?

    @Flag(name: .long, help: "Add the new key to the JWK Set in the file (made if missing) instead of writing a new file.")
    var addTo = false

    @Flag(name: .long, help: "Replace an existing file.")
    var force = false

    @Flag(name: .long, help: "Print the public key as PEM instead of a JWK array.")
    var pem = false

    func validate() throws {
        if addTo && force {
            throw ValidationError("--add-to keeps the keys in the file and --force replaces them; give one")
        }
        if from != nil && bits != nil {
            throw ValidationError("--bits is for a new key; a key taken --from a file keeps its own size")
        }
        if tpm2 && (addTo || from != nil) {
            throw ValidationError("--tpm2 makes one key file of its own: it goes with neither --add-to nor --from")
        }
        if tcti != nil && !tpm2 && tpm2Persist == nil {
            throw ValidationError("--tcti chooses the TPM for --tpm2")
        }
        if tpm2Persist != nil && (out != nil || addTo || from != nil || force) {
            throw ValidationError("--tpm2-persist keeps the key in the TPM and writes no file: it goes with none of --out, --add-to, --from, --force")
        }
        if out == nil && tpm2Persist == nil {
            throw ValidationError("--out FILE is required: where the key goes (or --tpm2-persist HANDLE for a key kept in the TPM)")
        }
    }

    func run() throws {
        if let tpm2Persist { return try reportingFailures { try runPersistent(at: tpm2Persist) } }
        guard let out else { throw ValidationError("--out FILE is required") }
        if tpm2 { return try reportingFailures { try runTPM2(out: out) } }
        try reportingFailures {
            let existing: [JWK]
            let key: JWK
            if let from {
                key = try EncodedJwkFile.importKey(from: from, kid: kid)
                existing = addTo ? try EncodedJwkFile.keysToAddTo(out, key: key) : []
            } else {
                existing = addTo ? try EncodedJwkFile.keysToAddTo(out, kid: kid) : []
                key = try EncodedJwkFile.makeKey(bits: bits ?? 2048, kid: kid)
            }
            try EncodedJwkFile.write(existing + [key], asSet: addTo, to: out, replacing: addTo || force)
            let privateKey = try RSAPrivateKey(jwk: key)
            let bits = privateKey.bits
            let publicKey = try privateKey.publicKey
            if pem {
                print(try publicKey.pem(), terminator: "")
            } else {
                print(String(decoding: try JWKSet(keys: [key.publicPart]).arrayJSON(), as: UTF8.self))
            }
            let kidText = key.kid ?? "-"
            if addTo {
                let kids = (existing + [key]).map { $0.kid ?? "-" }.joined(separator: ", ")
                printError("added key \(kidText) (RSA \(bits) bits) to \(out) (mode 0600); it holds \(existing.count + 1) keys, oldest first: \(kids)")
                printError(
                    "register the public key above on the client in Samarbeidsportalen, beside the ones there. A profile without key.kid signs with the newest key once Maskinporten accepts it, and with the newest accepted one until then (a restart or reload makes the daemon read the file)"
                )
            } else if let from {
                printError("wrote \(out) (mode 0600) from \(from): RSA \(bits) bits, kid \(kidText)")
                printError(
                    "if this key is registered in Samarbeidsportalen already, the kid there must be \(kidText) (give its kid with --kid otherwise); if not, register the public key above. Then give the file to the profile as key.encoded_jwk_file (or as a systemd credential)"
                )
            } else {
                printError("wrote \(out) (mode 0600): RSA \(bits) bits, kid \(kidText)")
                printError(
                    "register the public key above on the client in Samarbeidsportalen (\"Egne public nøkler\"), then give the file to the profile as key.encoded_jwk_file (or as a systemd credential)"
                )
            }
        }
    }

    /// `--tpm2`: the key made in the TPM, its wrapped file written, its public part printed.
    private func runTPM2(out: String) throws {
        let jwk = try EncodedJwkFile.makeTPMKey(bits: bits ?? 2048, kid: kid, tcti: tcti, to: out, replacing: force)
        try printPublic(jwk)
        let kidText = jwk.kid ?? "-"
        printError(
            "wrote \(out) (mode 0600): RSA \(bits ?? 2048) bits made in the TPM (\(tcti ?? "device:/dev/tpmrm0")), kid \(kidText); the file is the key wrapped by this TPM"
        )
        printError(
            "register the public key above on the client in Samarbeidsportalen (\"Egne public nøkler\"), then give the key to the profile as key: { provider: tpm2, uri: \"file:\(out)\", kid: \(kidText) }"
        )
    }

    /// `--tpm2-persist`: the key made in the TPM and kept there at a handle.
    private func runPersistent(at handle: String) throws {
        let jwk = try EncodedJwkFile.makePersistentTPMKey(bits: bits ?? 2048, kid: kid, tcti: tcti, handle: handle)
        try printPublic(jwk)
        let kidText = jwk.kid ?? "-"
        printError("made RSA \(bits ?? 2048) bits in the TPM (\(tcti ?? "device:/dev/tpmrm0")), persistent at \(handle), kid \(kidText); no file was written")
        printError(
            "register the public key above on the client in Samarbeidsportalen (\"Egne public nøkler\"), then give the key to the profile as key: { provider: tpm2, uri: \"handle:\(handle)\", kid: \(kidText) }"
        )
    }

    /// The public key, as a JWK array or with --pem as PEM, to stdout.
    private func printPublic(_ jwk: JWK) throws {
        if pem {
            print(try RSAPublicKey(jwk: jwk).pem(), terminator: "")
        } else {
            print(String(decoding: try JWKSet(keys: [jwk]).arrayJSON(), as: UTF8.self))
        }
    }

    /// Runs `body`, saying a failure in one line and exiting 1.
    private func reportingFailures(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let failure as EncodedJwkFile.Failure {
            printError("error: \(failure)")
            throw ExitCode(1)
        } catch let error as BrokerCryptoError {
            printError("error: \(error.reason)")
            throw ExitCode(1)
        }
    }
}
