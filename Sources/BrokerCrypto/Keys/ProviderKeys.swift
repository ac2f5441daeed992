import BrokerPOSIX
import COpenSSL
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Keys that live outside the process, behind an OpenSSL 3 provider: a TPM 2.0 through
/// `tpm2-openssl` (Debian's `tpm2-openssl`), or an HSM through `pkcs11-provider`. The key is
/// loaded through `OSSL_STORE` by URI (`handle:0x81000001`, `file:/path/key.tss2.pem`) and signs
/// through the same EVP calls as a key in memory, with the operation fetched from its provider
/// (`provider=NAME`, mandatory: with the default provider also loaded, OpenSSL would otherwise
/// try the default one, which has no private key to sign with).
enum ProviderKeys {
    /// One operation at a time on provider-held keys: a TPM is one device that runs one command
    /// at a time and holds three objects at most; without the kernel's resource manager (swtpm,
    /// or /dev/tpm0) two signatures at once fail with "cannot create primary".
    /// (Recursive: a key let go while the lock is held frees itself through it.)
    private static let device = ConditionLock((), recursive: true)

    /// Runs `body`, which uses a provider's key, alone.
    static func serially<T>(_ body: () throws -> T) throws -> T {
        try device.locked { try body() }
    }

    /// Each provider in a library context of its own, with the default provider beside it (the
    /// context's digests). The process's default context is left alone: keys in memory and
    /// TLS go on using OpenSSL's implicit default provider there.
    private static let loading = ConditionLock(())
    nonisolated(unsafe) private static var contexts: [String: ProviderContext] = [:]
    /// The TPM the `tpm2` provider was loaded for, as configured (nil: its default).
    nonisolated(unsafe) private static var loadedTCTI: String?

    /// The context `name` is loaded in now, loaded first if it is not yet. A TPM's provider
    /// connects to the TPM as it loads: `tcti`, if given, says which (the provider reads it from
    /// `TPM2OPENSSL_TCTI`).
    static func context(_ name: String, tcti: String? = nil) throws -> ProviderContext {
        try loading.locked {
            if let context = contexts[name] { return context }
            if name == "tpm2" {
                if let tcti { setenv("TPM2OPENSSL_TCTI", tcti, 1) }
                loadedTCTI = tcti
                // The TPM's client library writes its own WARNING/ERROR lines to stderr, outside
                // the daemon's log format; what went wrong reaches the log in the daemon's words.
                // An operator's TSS2_LOG still wins.
                setenv("TSS2_LOG", "all+NONE", 0)
            }
            let context = try ProviderContext(name, tcti: tcti)
            contexts[name] = context
            return context
        }
    }

    /// The key at `uri` loaded in a new context of `name`'s, which takes the place of the
    /// current one if the key loads there. The provider of a TPM does not recover from a TPM
    /// that went away (its connection stays failed after the TPM is back), so a key that no
    /// longer loads in the current context is tried in a new one. The context it replaces is
    /// kept: keys of other profiles may still be in it, until they too are loaded again.
    static func keyInNewContext(uri: String, provider name: String) throws -> (EVPKey, ProviderContext) {
        let context = try ProviderContext(name, tcti: tpmTCTI)
        do {
            let key = try key(uri: uri, in: context)
            loading.locked { contexts[name] = context }
            return (key, context)
        } catch {
            context.free()
            throw error
        }
    }

    /// Why `name` did not load, with the fix: the module is not installed, or (for a TPM) the
    /// TPM did not answer when the provider connected to it.
    static func unavailable(_ name: String, detail: String, tcti: String?) -> String {
        // `MODULESDIR: "/usr/lib/x86_64-linux-gnu/ossl-modules"`
        let said = String(cString: OpenSSL_version(COpenSSL_MODULES_DIR()))
        let directory = said.split(separator: "\"", omittingEmptySubsequences: false).dropFirst().first.map(String.init) ?? said
        let module = (ProcessEnvironment.value("OPENSSL_MODULES") ?? directory) + "/\(name).so"
        guard access(module, R_OK) == 0 else {
            let package = name == "tpm2" ? "tpm2-openssl" : name == "pkcs11" ? "pkcs11-provider" : "the package that has \(name).so"
            return "the OpenSSL provider \"\(name)\" is not installed (\(module) is missing): apt install \(package)"
        }
        if name == "tpm2" {
            return
                "the TPM did not answer (\(device(tcti))): check that the device exists and that the daemon's user may open it (the tss group, and DeviceAllow= under systemd)\(detail.isEmpty ? "" : "; OpenSSL said: \(detail)")"
        }
        return "the OpenSSL provider \"\(name)\" could not be loaded\(detail.isEmpty ? "" : ": \(detail)")"
    }

    /// Which TPM the provider talks to, as the operator would look for it.
    static func device(_ tcti: String?) -> String {
        tcti ?? ProcessEnvironment.value("TPM2OPENSSL_TCTI") ?? "device:/dev/tpmrm0"
    }

    /// The TPM the `tpm2` provider was loaded for, as configured (nil: its default).
    static var tpmTCTI: String? { loading.locked { loadedTCTI } }

    /// Why a key that was loaded before cannot be had now: for a TPM, that it stopped answering
    /// (or restarted without the key's storage key, if `detail` says so).
    static func unanswered(_ name: String, loading uri: String, detail: String) -> String {
        guard name == "tpm2" else { return "the \(name) provider could not load \(uri) again: \(detail)" }
        let tcti = tpmTCTI
        return
            "the TPM stopped answering (\(device(tcti))) and the key \(uri) could not be loaded again; it is used again as soon as the TPM answers: \(detail)"
    }

    /// Whether `path` holds a TPM-wrapped key whole: a `TSS2 PRIVATE KEY` PEM block of the size
    /// an RSA key wrapped by a TPM has (its public area alone is over 256 bytes).
    static func holdsWrappedKey(_ path: String) -> Bool {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let begin = text.firstRange(ofElements: "-----BEGIN TSS2 PRIVATE KEY-----"), let end = text.firstRange(ofElements: "-----END TSS2 PRIVATE KEY-----")
        else { return false }
        let body = text[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace }
        return (try? Base64.decode(Array(String(body).utf8)))?.count ?? 0 > 400
    }

    /// The private key at `uri`, held by the provider loaded in `context`.
    static func key(uri: String, in context: ProviderContext) throws -> EVPKey {
        // The store keeps the URI's and the query's pointers while it is open: C strings that
        // live as long as it does.
        try uri.withCString { location in
            // Preferred, not mandatory: a `file:` URI is read by the default provider's store
            // and decoded by the provider's decoders.
            try "?\(context.query)".withCString { query in
                guard let store = OSSL_STORE_open_ex(location, context.pointer, query, nil, nil, nil, nil, nil) else {
                    throw BrokerCryptoError(.providerKeyUnavailable, Self.unreadable(uri, detail: OpenSSLErrorQueue.drain().joined(separator: "; ")))
                }
                defer { OSSL_STORE_close(store) }
                var found: OpaquePointer?
                while found == nil, OSSL_STORE_eof(store) == 0 {
                    guard let info = OSSL_STORE_load(store) else { break }
                    defer { OSSL_STORE_INFO_free(info) }
                    if OSSL_STORE_INFO_get_type(info) == COpenSSL_STORE_INFO_PKEY() {
                        found = OSSL_STORE_INFO_get1_PKEY(info)
                    }
                }
                guard let found else {
                    throw BrokerCryptoError(.providerKeyUnavailable, Self.unreadable(uri, detail: OpenSSLErrorQueue.drain().joined(separator: "; ")))
                }
                ERR_clear_error()
                return EVPKey(taking: found, heldByProvider: true)
            }
        }
    }

    /// Why the key at `uri` could not be had, in the operator's terms.
    static func unreadable(_ uri: String, detail: String) -> String {
        if uri.hasPrefix("handle:") {
            return
                "the TPM has no key at \(uri.dropFirst("handle:".count)) (tpm2_getcap handles-persistent lists the handles in use)\(detail.isEmpty ? "" : "; OpenSSL said: \(detail)")"
        }
        if uri.hasPrefix("file:"), Self.holdsWrappedKey(String(uri.dropFirst("file:".count))) {
            // The TPM answered (the provider loaded) and the file is a whole wrapped key, yet
            // the TPM would not load it: the TPM's reason (an integrity failure) reaches only
            // its library's own log, not OpenSSL's errors.
            return
                "the TPM refused the key file \(uri): it was wrapped by another TPM (a key file works only on the machine whose TPM made it), or it was altered, or the TPM had no room for it (without the kernel's resource manager, /dev/tpmrm0, a TPM holds three keys at a time); make a key on this machine with keygen --tpm2"
        }
        return "the key \(uri) could not be loaded\(detail.isEmpty ? "" : ": \(detail)")"
    }
}

/// An OpenSSL library context holding one provider (and the default provider beside it), for
/// the keys that provider holds. Freed only when its load fails: keys loaded in it free
/// themselves through it.
final class ProviderContext: @unchecked Sendable {
    // @unchecked: the pointers are set once; OpenSSL's library contexts are thread-safe.
    let pointer: OpaquePointer
    /// The provider's name.
    let name: String
    /// The property query that fetches operations from it: mandatory, as the default provider
    /// beside it has no private key to sign with.
    var query: String { "provider=\(name)" }

    init(_ name: String, tcti: String?) throws {
        guard let context = OSSL_LIB_CTX_new() else { throw OpenSSLErrorQueue.error("OSSL_LIB_CTX_new failed") }
        guard OSSL_PROVIDER_load(context, "default") != nil else {
            OSSL_LIB_CTX_free(context)
            throw OpenSSLErrorQueue.error("the default OpenSSL provider could not be loaded")
        }
        guard OSSL_PROVIDER_load(context, name) != nil else {
            let detail = OpenSSLErrorQueue.drain().joined(separator: "; ")
            OSSL_LIB_CTX_free(context)
            throw BrokerCryptoError(.providerUnavailable, ProviderKeys.unavailable(name, detail: detail, tcti: tcti))
        }
        pointer = context
        self.name = name
    }

    /// Frees a context no key was loaded in.
    func free() {
        OSSL_LIB_CTX_free(pointer)
    }
}
