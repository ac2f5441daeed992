import COpenSSL
import Foundation

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
    /// (`NSLock`, over a pthread mutex: the thread sanitizer follows it, where it took the
    /// standard library's `Mutex` on Linux for no lock at all.)
    private static let device = NSLock()

    /// Runs `body`, which uses a provider's key, alone.
    static func serially<T>(_ body: () throws -> T) throws -> T {
        try device.withLock { try body() }
    }

    /// Providers loaded for the life of the process, by name (OpenSSL counts their references).
    private static let loading = NSLock()
    nonisolated(unsafe) private static var loaded: [String: OpaquePointer] = [:]

    /// Loads `name` (and the default provider beside it, which the key's public half and every
    /// other key still use) once. A TPM's provider connects to the TPM as it loads: `tcti`, if
    /// given, says which (the provider reads it from `TPM2OPENSSL_TCTI`).
    static func load(_ name: String, tcti: String? = nil) throws {
        try loading.withLock {
            if loaded[name] != nil { return }
            if loaded["default"] == nil {
                guard let provider = OSSL_PROVIDER_load(nil, "default") else {
                    throw OpenSSLErrorQueue.error("the default OpenSSL provider could not be loaded")
                }
                loaded["default"] = provider
            }
            if let tcti, name == "tpm2" { setenv("TPM2OPENSSL_TCTI", tcti, 1) }
            guard let provider = OSSL_PROVIDER_load(nil, name) else {
                let detail = OpenSSLErrorQueue.drain().joined(separator: "; ")
                throw BrokerCryptoError(.providerUnavailable, Self.unavailable(name, detail: detail, tcti: tcti))
            }
            loaded[name] = provider
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
            let device = tcti ?? ProcessEnvironment.value("TPM2OPENSSL_TCTI") ?? "device:/dev/tpmrm0"
            return
                "the TPM did not answer (\(device)): check that the device exists and that the daemon's user may open it (the tss group, and DeviceAllow= under systemd)\(detail.isEmpty ? "" : "; OpenSSL said: \(detail)")"
        }
        return "the OpenSSL provider \"\(name)\" could not be loaded\(detail.isEmpty ? "" : ": \(detail)")"
    }

    /// The private key at `uri`, held by `provider`.
    static func key(uri: String, provider: String) throws -> EVPKey {
        // The store keeps the URI's and the query's pointers while it is open: C strings that
        // live as long as it does.
        try uri.withCString { location in
            try "?provider=\(provider)".withCString { query in
                guard let store = OSSL_STORE_open_ex(location, nil, query, nil, nil, nil, nil, nil) else {
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
        let lowered = detail.lowercased()
        if lowered.contains("integrity") || lowered.contains("0x9a2") || lowered.contains("0x98b") || lowered.contains("bad auth") || lowered.contains("0x1df")
        {
            return
                "the key file \(uri) was wrapped by another TPM: it can be used only on the machine whose TPM made it; make a key on this one with keygen --tpm2"
        }
        return "the key \(uri) could not be loaded\(detail.isEmpty ? "" : ": \(detail)")"
    }
}

/// The process environment, read without Foundation.
enum ProcessEnvironment {
    static func value(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
