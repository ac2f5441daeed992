public import Logging
public import ServiceLifecycle

/// Every profile's token cache, refreshed together as one service.
public final class TokenBroker: Service, Sendable {
    /// The caches by profile name.
    public let caches: [String: TokenCache]
    private let upstreams: [UpstreamClient]
    private let logger: Logger

    /// Builds a cache for every profile of `configuration` whose credentials are given. Profiles
    /// sharing a `ca_file` share one HTTP client.
    public init(
        configuration: BrokerConfiguration,
        credentials: [String: SigningCredentials],
        policy: RetryPolicy = RetryPolicy(),
        timeouts: UpstreamClient.Timeouts = UpstreamClient.Timeouts(),
        logger: Logger
    ) throws {
        var clients: [String: UpstreamClient] = [:]
        var caches: [String: TokenCache] = [:]
        for profile in configuration.profiles {
            guard let credentials = credentials[profile.name] else { continue }
            let trust = profile.environment.caFile ?? ""
            let upstream: UpstreamClient
            if let existing = clients[trust] {
                upstream = existing
            } else {
                do {
                    upstream = try UpstreamClient(caFile: profile.environment.caFile, timeouts: timeouts, logger: logger)
                } catch {
                    throw ConfigError(.invalidValue, file: configuration.file, keyPath: "environments.\(profile.environment.name).ca_file",
                                      "\(profile.environment.caFile ?? "") is not a readable PEM certificate file: \(error)")
                }
                clients[trust] = upstream
            }
            let fetcher = TokenFetcher(builder: GrantBuilder(profile: profile, credentials: credentials), upstream: upstream)
            caches[profile.name] = TokenCache(fetcher: fetcher, refresh: configuration.refresh, policy: policy, logger: logger)
        }
        self.caches = caches
        self.upstreams = Array(clients.values)
        self.logger = logger
    }

    /// The cache of `profile`.
    public func cache(for profile: String) -> TokenCache? {
        caches[profile]
    }

    /// Fetches every profile's first token and keeps them fresh until graceful shutdown.
    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                for cache in self.caches.values {
                    group.addTask { await cache.run() }
                }
            }
        }
        await shutdown()
    }

    /// Closes the upstream connections.
    public func shutdown() async {
        for upstream in upstreams {
            do { try await upstream.shutdown() } catch { logger.debug("upstream client shutdown", metadata: ["error": "\(error)"]) }
        }
    }
}
