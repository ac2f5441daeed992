package import BrokerConfig
package import BrokerPOSIX
package import BrokerServer
package import Logging
package import ServiceLifecycle
package import UnixSignals

extension Daemon {
    /// What `serve` runs, and what the integration tests run in their own process: the socket
    /// (systemd's or the configured path), the start line, and the daemon's services in one
    /// group. Kept in one place so that the tests cannot drift from what `serve` starts.
    package static func serviceGroup(
        configPath: String,
        loaded: LoadedConfiguration,
        version: String,
        metrics: ServerMetrics = ServerMetrics(),
        limits: ServerLimits = ServerLimits(),
        output: LineLogHandler.Output,
        logger: Logger,
        gracefulShutdownSignals: [UnixSignal]
    ) throws -> ServiceGroup {
        let passed = ListenFDs.take()
        let listener = try listener(loaded, passed: passed, logger: logger)
        logger.info("starting", metadata: startLine(loaded, version: version, listener: listener))
        let kept = TokenStoreKeeper.read(passed, logger: logger)
        let daemon = try Daemon(
            configPath: configPath, loaded: loaded, listener: listener, restoring: kept, limits: limits, metrics: metrics, output: output, logger: logger)
        return ServiceGroup(services: daemon.services, gracefulShutdownSignals: gracefulShutdownSignals, logger: logger)
    }

    /// What an operator looks for first: which version runs, with which file, where it listens
    /// and what it serves.
    static func startLine(_ loaded: LoadedConfiguration, version: String, listener: SocketServer.Listener) -> Logger.Metadata {
        let configuration = loaded.configuration
        let socket =
            listener.removeOnExit ?? ListenFDs.boundPath(listener.descriptor).map { "\($0) (from systemd)" } ?? "fd \(listener.descriptor) (from systemd)"
        var metadata: Logger.Metadata = [
            "version": "\(version)", "config": "\(configuration.file)", "socket": "\(socket)",
            "profiles":
                "\(configuration.profiles.isEmpty ? "none" : configuration.profiles.map { "\($0.name) (\($0.environment.name))" }.joined(separator: ", "))",
        ]
        if !configuration.platformAccessTokens.isEmpty {
            metadata["platform_access_tokens"] = "\(configuration.platformAccessTokens.map(\.name).joined(separator: ", "))"
        }
        if let exchange = configuration.idPortenExchange {
            metadata["id_porten_exchange"] = "\(exchange.environment.name)"
        }
        return metadata
    }
}
