import ArgumentParser
import BrokerClient
import BrokerConfig
import BrokerDaemon
import BrokerPOSIX
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
            SIGTERM and SIGINT stop it cleanly. A configuration it cannot serve (and with --strict, anything \
            check-config calls an error) ends it with exit status 78 (EX_CONFIG), which the unit does not restart.
            """
    )

    /// EX_CONFIG from sysexits.h: the unit's `RestartPreventExitStatus=` leaves the service
    /// failed instead of starting it again, since a configuration error is not transient.
    static let configurationError = ExitCode(78)

    @OptionGroup var options: ConfigOption

    @Option(
        name: .long,
        help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (default: log_level in the configuration, else info).", valueName: "level"))
    var logLevel: String?

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Refuse to start on anything check-config reports as an error, a profile whose key does not load included (the unit runs serve so).",
            discussion: "Without it, such a profile answers 503 and the others are served."))
    var strict = false

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
        let loader = KeyLoader()
        let loaded: LoadedConfiguration
        do {
            loaded = try LoadedConfiguration.load(path: path, loader: loader)
        } catch {
            printError("error: \(error)")
            throw Self.configurationError
        }
        if strict {
            // check-config's report, once, where the operator looks: the journal.
            let check = ConfigCheck.run(loaded, loader: loader)
            if !check.errors.isEmpty {
                printError(String(check.report.dropLast()))
                // The report shows most errors under their section already: the rest, once.
                for error in check.errors where !check.report.containsText(error.message) { printError("error: \(error)") }
                printError(
                    "error: not starting: the configuration has \(check.errors.count == 1 ? "an error" : "\(check.errors.count) errors") (exit status 78, not restarted); fix it, check it with check-config, then start again"
                )
                throw Self.configurationError
            }
        }
        let level = Logger.Level(rawValue: logLevel ?? loaded.configuration.logLevel) ?? .info
        bootstrapLogging(level: level)
        let logger = Logger(label: "maskinporten-broker")
        for failure in hardening {
            logger.warning("process hardening incomplete", metadata: ["error": "\(failure)"])
        }
        do {
            let group = try Daemon.serviceGroup(
                configPath: path, loaded: loaded, version: brokerVersion, metrics: bootstrapMetrics(), output: logOutput, logger: logger,
                gracefulShutdownSignals: [.sigterm, .sigint])
            try await group.run()
        } catch let error as ExitCode {
            throw error
        } catch let error as ConfigError {
            printError("error: \(error)")
            throw Self.configurationError
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
