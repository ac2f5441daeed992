package import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

extension EncodedJwkFile {
    /// A key made inside the TPM and kept there, persistent at `handle` (`0x81000001`): no file
    /// at all; the profile names it `uri: "handle:0x81000001"`. OpenSSL's provider cannot make a
    /// key persistent, so tpm2-tools make it: a primary key of the owner hierarchy, the RSA key
    /// under it, loaded and made persistent, each step's context in a private temporary
    /// directory removed after. (tpm2-tools expect a resource manager, as /dev/tpmrm0 is: without
    /// one a TPM keeps what they load and soon has no room.) Its public JWK, read back through
    /// the provider from the handle, named as `makeKey` names.
    package static func makePersistentTPMKey(bits: Int, kid: String?, tcti: String?, handle: String, now: Date = Date()) throws -> JWK {
        let digits = handle.lowercased().hasPrefix("0x81") ? handle.dropFirst(4) : ""
        guard digits.count == 6, digits.allSatisfy(\.isHexDigit) else {
            throw Failure("--tpm2-persist takes a persistent handle from 0x81000000 to 0x81ffffff, such as 0x81000001; \"\(handle)\" is none")
        }
        guard [2048, 3072].contains(bits) else { throw Failure("--bits must be 2048 or 3072 for a TPM key (what TPMs make)") }
        if let kid { try check(kid: kid) }
        guard let tools = ["/usr/bin", "/usr/local/bin"].first(where: { FileManager.default.isExecutableFile(atPath: "\($0)/tpm2_evictcontrol") }) else {
            throw Failure("--tpm2-persist makes the key persistent with tpm2-tools: apt install tpm2-tools")
        }
        if (try? RSAPrivateKey(uri: "handle:\(handle)", provider: "tpm2", tcti: tcti)) != nil {
            throw Failure(
                "the TPM already has a key at \(handle): choose another handle (tpm2_getcap handles-persistent lists those in use), or remove that key (tpm2_evictcontrol -C o -c \(handle))"
            )
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("maskinporten-broker-keygen-\(UUID().uuidString)").path
        guard mkdir(directory, 0o700) == 0 else { throw Failure("\(directory) cannot be made: \(String(cString: strerror(errno)))") }
        defer { try? FileManager.default.removeItem(atPath: directory) }
        func tool(_ name: String, _ arguments: [String]) throws {
            var environment = ProcessEnvironment.all
            if let tcti { environment["TPM2TOOLS_TCTI"] = tcti }
            let (status, said) = try ChildProcess.run("\(tools)/\(name)", arguments: arguments + ["-Q"], environment: environment)
            guard status == 0 else {
                let reason = said.split(separator: "\n").first { $0.hasPrefix("ERROR: ") }.map { String($0.dropFirst("ERROR: ".count)) }
                throw Failure("\(name) failed making the key persistent at \(handle): \(reason ?? "exit \(status)")")
            }
        }
        defer {
            // What was loaded for the making goes (the resource manager would drop it anyway).
            for context in ["\(directory)/key.ctx", "\(directory)/primary.ctx"] where FileManager.default.fileExists(atPath: context) {
                try? tool("tpm2_flushcontext", [context])
            }
        }
        try tool("tpm2_createprimary", ["-C", "o", "-c", "\(directory)/primary.ctx"])
        try tool("tpm2_create", ["-C", "\(directory)/primary.ctx", "-G", "rsa\(bits)", "-u", "\(directory)/key.pub", "-r", "\(directory)/key.priv"])
        try tool("tpm2_load", ["-C", "\(directory)/primary.ctx", "-u", "\(directory)/key.pub", "-r", "\(directory)/key.priv", "-c", "\(directory)/key.ctx"])
        try tool("tpm2_evictcontrol", ["-C", "o", "-c", "\(directory)/key.ctx", handle])
        do {
            let persisted = try RSAPrivateKey(uri: "handle:\(handle)", provider: "tpm2", tcti: tcti)
            var jwk = try persisted.publicKey.jwk(algorithm: .rs256)
            jwk.kid = kid ?? defaultKid(jwk, now: now)
            return jwk
        } catch let error as BrokerCryptoError {
            throw Failure("the key made persistent at \(handle) does not load: \(error.reason)")
        }
    }
}
