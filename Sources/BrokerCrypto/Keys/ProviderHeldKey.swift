/// A key a provider holds (a TPM's), as this process has it now: loaded by URI, and loaded again
/// when the device lost it. A TPM that restarted or was reset forgets every key loaded into it;
/// the wrapped file or the persistent handle brings it back, with no restart of the daemon.
final class ProviderHeldKey: @unchecked Sendable {
    // @unchecked: `key` and `context` are read and replaced only inside `ProviderKeys.serially`.
    /// The provider's name (`tpm2`).
    let provider: String
    /// Where the key is loaded from again; nil for a key just made (keygen), which has no copy
    /// to load from yet.
    let uri: String?
    /// The modulus length in bits (it does not change when the key is loaded again).
    let bits: Int
    private var key: EVPKey?
    /// The library context `key` was loaded in (signing fetches its operations there).
    private(set) var context: ProviderContext

    init(_ key: EVPKey, in context: ProviderContext, uri: String?) {
        self.key = key
        self.context = context
        provider = context.name
        self.uri = uri
        bits = key.bits
    }

    /// The key, loaded again first if it was let go: in the provider's current context, else
    /// in a new one (a TPM's provider does not recover from a TPM that went away). Called
    /// inside `ProviderKeys.serially`.
    func current() throws -> EVPKey {
        if let key { return key }
        guard let uri else {
            throw BrokerCryptoError(.providerKeyUnavailable, "the key made in the \(provider) provider is no longer held by it")
        }
        do {
            // The context as it is now (another key may have replaced it already), and if the
            // key does not load there, a new one.
            let current = try ProviderKeys.context(provider)
            if let loaded = try? ProviderKeys.key(uri: uri, in: current) {
                (key, context) = (loaded, current)
                return loaded
            }
            let (loaded, fresh) = try ProviderKeys.keyInNewContext(uri: uri, provider: provider)
            (key, context) = (loaded, fresh)
            return loaded
        } catch let error as BrokerCryptoError {
            throw BrokerCryptoError(.providerUnavailable, ProviderKeys.unanswered(provider, loading: uri, detail: error.reason))
        }
    }

    /// Runs `body` with the key and its context; if it fails, lets the key go and loads it
    /// again for one more try, so that a device that lost its keys serves again as soon as it
    /// answers. Letting go comes before loading: freeing the key flushes its handle in the
    /// device, and a device that restarted may already have given that handle to the key
    /// loaded anew.
    func using<T>(_ body: (EVPKey, ProviderContext) throws -> T) throws -> T {
        try ProviderKeys.serially {
            do {
                return try body(try current(), context)
            } catch {
                guard uri != nil else { throw error }
                key = nil
                let reloaded = try current()
                return try body(reloaded, context)
            }
        }
    }
}
