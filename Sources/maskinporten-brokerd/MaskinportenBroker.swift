import ArgumentParser
import BrokerClient
import Dispatch

#if canImport(Glibc)
    import Glibc
#endif

/// The entry point. The client commands (`token`, `health`) make one blocking request over the
/// socket and need neither the concurrency runtime nor its threads, so they run synchronously:
/// they are called once per token by scripts and services, and start-up is most of their time.
/// Every other command runs asynchronously on the main actor, as `@main` on an
/// `AsyncParsableCommand` would.
@main
enum Entry {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        if arguments.first == "api" {
            // Read as the small client reads it (exit 2 for a call that cannot be made as
            // given); only --help goes to the argument parser.
            switch ClientInvocation(arguments) {
            case .api(let request)?: exit(ClientCommands.api(request))
            case .usage(let message)?:
                printError(message)
                exit(ClientCommands.apiUsage)
            default: break
            }
        }
        if let first = arguments.first, first == "token" || first == "health" || first == "api" {
            do {
                var command = try MaskinportenBroker.parseAsRoot(arguments)
                try command.run()
            } catch {
                MaskinportenBroker.exit(withError: error)
            }
            exit(0)
        }
        // At default priority: a task made on the main thread would take the main thread's class,
        // user-initiated, and so would everything it starts. libdispatch gives user-initiated work
        // threads a nice value of -2, which a daemon without CAP_SYS_NICE or RLIMIT_NICE may not
        // take: its refusal went to syslog at every new worker thread.
        Task(priority: .medium) { @MainActor in
            await MaskinportenBroker.main()
            exit(0)
        }
        // Serves the main actor, ending the main thread with `pthread_exit`: the one unwinding
        // the daemon does, which the release build's missing unwind tables keep short
        // (scripts/no-unwind-tables.ld).
        dispatchMain()
    }
}

/// The `maskinporten-broker` command line (README, "Commands").
struct MaskinportenBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maskinporten-broker",
        abstract: "Holds Maskinporten keys and hands Altinn tokens to local services over a Unix socket.",
        version: brokerVersion,
        subcommands: [
            Serve.self, TokenCommand.self, ApiCommand.self, HealthCommand.self, CheckConfig.self, Keygen.self, SignGrant.self, EmulatorCommand.self,
            DevCommand.self,
        ]
    )
}

/// `--config PATH`, shared by the commands that read the configuration.
struct ConfigOption: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp(
            "The configuration file.",
            discussion: "Default: $MASKINPORTEN_BROKER_CONFIG, else /etc/maskinporten-broker/broker.yaml.",
            valueName: "path"
        ))
    var config: String?
}
