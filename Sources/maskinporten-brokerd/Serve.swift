import ArgumentParser
import BrokerClient
import BrokerCore
import BrokerPOSIX
import BrokerServer
import Logging
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// `serve`: the daemon.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the daemon: fetch and refresh tokens, serve them on the Unix socket.",
        discussion: """
            Uses the socket systemd passes in ($LISTEN_FDS) when there is one, else creates socket.path. \
            SIGHUP reloads the configuration and keys (a broken new configuration is refused and the old one kept); \
            SIGTERM and SIGINT stop it cleanly.
            """
    )

    @OptionGroup var options: ConfigOption

    @Option(
        name: .long,
        help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default: log_level in the configuration, else info).", valueName: "level"))
    var logLevel: String?

    func validate() throws {
        if let logLevel, Logger.Level(rawValue: logLevel) == nil {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    func run() async throws {
        // A SIGHUP before the reload handler is in place must not end the daemon.
        signal(SIGHUP, SIG_IGN)
        let hardening = ProcessHardening.apply()
        ProcessHardening.raiseOpenFileLimit()
        let path = ConfigLoader.resolvePath(explicit: options.config)
        let loaded: LoadedConfiguration
        do {
            loaded = try LoadedConfiguration.load(path: path)
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
        let level = Logger.Level(rawValue: logLevel ?? loaded.configuration.logLevel) ?? .info
        bootstrapLogging(level: level)
        let logger = Logger(label: "maskinporten-broker")
        for failure in hardening {
            logger.warning("process hardening incomplete", metadata: ["error": "\(failure)"])
        }
        do {
            let daemon = try Daemon(
                configPath: path, loaded: loaded, listener: try Self.listener(loaded.configuration), metrics: bootstrapMetrics(), output: logOutput,
                logger: logger)
            let group = ServiceGroup(services: daemon.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
            try await group.run()
        } catch let error as ExitCode {
            throw error
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }

    /// The socket systemd passed in, or the configured path.
    static func listener(_ configuration: BrokerConfiguration) throws -> SocketServer.Listener {
        let passed = ListenFDs.take()
        if let fd = passed.first {
            guard ListenFDs.isListeningUnixStream(fd) else {
                throw ValidationError("the socket passed by systemd (fd \(fd)) is not a listening Unix stream socket; use ListenStream= with a path")
            }
            return SocketServer.Listener(descriptor: fd, removeOnExit: nil)
        }
        var group: UInt32?
        if let name = configuration.socket.group {
            guard let gid = AccessPolicy.groupID(name) else {
                throw ValidationError("\(configuration.file): socket.group: no group named \(name) on this host")
            }
            group = gid
        }
        let fd = try UnixListener.make(path: configuration.socket.path, mode: mode_t(configuration.socket.mode), group: group.map { gid_t($0) })
        return SocketServer.Listener(descriptor: fd, removeOnExit: configuration.socket.path)
    }
}
