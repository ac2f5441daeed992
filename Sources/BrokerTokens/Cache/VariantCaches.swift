import NIOConcurrencyHelpers

/// The caches of one profile's variants (`delegation:`), made on first use and kept at most
/// `limit`: past it, the least recently used goes. Each variant is a `TokenCache` of its own, so
/// its fetches, refreshes and backoff never touch the others'. Looking one up is one lock and
/// one hash lookup, on the request path.
final class VariantCaches: Sendable {
    private struct Slot {
        var cache: TokenCache
        var lastUsed: UInt64
    }

    private struct State {
        var slots: [TokenVariant: Slot] = [:]
        var clock: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())
    private let limit: Int
    private let make: @Sendable (TokenVariant, IssuedToken?) -> TokenCache

    /// Caches made by `make` (with a token kept through a restart, or none), at most `limit`.
    init(limit: Int, make: @escaping @Sendable (TokenVariant, IssuedToken?) -> TokenCache) {
        self.limit = limit
        self.make = make
    }

    /// The cache of `variant`, made if new; `made` says whether it was (the refresh loop must
    /// then look at the caches again), and `evicted` which cache made room for it.
    func cache(for variant: TokenVariant) -> (cache: TokenCache, made: Bool, evicted: TokenCache?) {
        state.withLockedValue { state in
            state.clock &+= 1
            // One lookup, not a second one to mark the slot used: the key hashes every part of
            // the variant, on every request for it.
            if let index = state.slots.index(forKey: variant) {
                state.slots.values[index].lastUsed = state.clock
                return (state.slots.values[index].cache, false, nil)
            }
            var evicted: TokenCache?
            if state.slots.count >= limit, let oldest = state.slots.min(by: { $0.value.lastUsed < $1.value.lastUsed }) {
                // A scan, only when a new variant arrives at a full table.
                evicted = oldest.value.cache
                state.slots[oldest.key] = nil
            }
            let cache = make(variant, nil)
            state.slots[variant] = Slot(cache: cache, lastUsed: state.clock)
            return (cache, true, evicted)
        }
    }

    /// Holds `token`, kept through a restart, in a new cache for `variant`, unless the variant is
    /// cached already or the table is full; false then.
    func restore(_ variant: TokenVariant, token: IssuedToken) -> Bool {
        state.withLockedValue { state in
            guard state.slots[variant] == nil, state.slots.count < limit else { return false }
            state.clock &+= 1
            state.slots[variant] = Slot(cache: make(variant, token), lastUsed: state.clock)
            return true
        }
    }

    /// Forgets `cache` (an idle variant whose token ran out), if it is still the variant's.
    func remove(_ cache: TokenCache) {
        state.withLockedValue { state in
            if let variant = cache.variant, state.slots[variant]?.cache === cache { state.slots[variant] = nil }
        }
    }

    /// Every variant's cache.
    var caches: [TokenCache] {
        state.withLockedValue { $0.slots.values.map(\.cache) }
    }

    /// How many variants are cached.
    var count: Int {
        state.withLockedValue { $0.slots.count }
    }
}
