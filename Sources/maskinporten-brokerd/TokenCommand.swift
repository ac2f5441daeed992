import ArgumentParser
import BrokerClient

/// `token`: prints a token from the running daemon.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a token for a profile from the running daemon.",
        discussion: "Prints the bare token and a newline (with --json the whole answer). Exit 0, else one line on standard error and exit 1."
    )

    @Argument(help: "The profile.")
    var profile: String

    @Option(
        name: .long,
        help: ArgumentHelp("The daemon's socket (default: $MASKINPORTEN_BROKER_SOCKET, else /run/maskinporten-broker/broker.sock).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("min-valid"), help: ArgumentHelp("The token must have at least this many seconds left.", valueName: "seconds"))
    var minValid: Int?

    @Flag(name: .long, help: "Print the whole JSON answer.")
    var json = false

    @Option(
        name: .customLong("system-user-org"),
        help: ArgumentHelp("The system user's organisation, for a profile whose delegation: lets callers choose it.", valueName: "orgno"))
    var systemUserOrg: String?

    @Option(name: .customLong("external-ref"), help: ArgumentHelp("The system user's external reference (with --system-user-org).", valueName: "ref"))
    var externalRef: String?

    @Option(
        name: .customLong("consumer-org"),
        help: ArgumentHelp("The organisation acted for, for a profile whose delegation: lets callers choose it.", valueName: "orgno"))
    var consumerOrg: String?

    func run() throws {
        let status = ClientCommands.token(
            ClientCommands.TokenRequest(
                profile: profile, socket: socket, minValid: minValid, json: json, systemUserOrg: systemUserOrg, externalRef: externalRef,
                consumerOrg: consumerOrg))
        if status != 0 { throw ExitCode(status) }
    }
}

/// `health`: the probe for systemd, containers and monitoring.
struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check the running daemon: exit 0 healthy (with --ready: every profile can hand out a token), 1 not.",
        discussion: "Prints one line of reason. Usable as ExecStartPost=, a container HEALTHCHECK or a monitoring probe."
    )

    @Option(name: .long, help: ArgumentHelp("The daemon's socket.", valueName: "path"))
    var socket: String?

    @Flag(name: .long, help: "Check readiness (/readyz) instead of liveness (/healthz).")
    var ready = false

    @Option(name: .long, help: ArgumentHelp("Give up after this many seconds.", valueName: "seconds"))
    var timeout: Int = ClientCommands.defaultHealthTimeoutSeconds

    func run() throws {
        let status = ClientCommands.health(socket: socket, ready: ready, timeoutSeconds: timeout)
        if status != 0 { throw ExitCode(status) }
    }
}

/// `api`: one Altinn API call through the daemon's gateway. Its arguments are read by
/// `ClientInvocation` (in both executables, so that they agree); this declaration gives `--help`.
struct ApiCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Send an Altinn API call through the daemon's gateway, with the profile's token (which this command never sees).",
        discussion: """
            The method is POST when --data is given, else GET, unless named before the path. The answer's body goes to standard output, \
            its status to standard error when it is not 2xx. Exit 0 for 2xx, 1 for another status, 2 for a call that cannot be made \
            as given, 3 when the daemon cannot be reached. Example: maskinporten-broker api notifications \
            /notifications/api/v1/future/orders --data @order.json
            """
    )

    @Argument(help: "The profile (its gateway: section says which paths it may reach).")
    var profile: String

    @Argument(help: "The method and the path, such as GET /notifications/api/v1/orders/ID/status.")
    var methodAndPath: [String] = []

    @Option(
        name: .long,
        help: ArgumentHelp(
            "The body: TEXT, @FILE, or @- for standard input (sent as application/json unless a Content-Type header is given).", valueName: "body"))
    var data: String?

    @Option(name: .long, help: ArgumentHelp("A header, 'Name: value'; repeatable.", valueName: "header"))
    var header: [String] = []

    @Flag(name: .long, help: "Print the status line and headers before the body.")
    var include = false

    @Option(name: .long, help: ArgumentHelp("The daemon's socket.", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("system-user-org"), help: ArgumentHelp("The system user's organisation (delegation).", valueName: "orgno"))
    var systemUserOrg: String?

    @Option(name: .customLong("external-ref"), help: ArgumentHelp("The system user's external reference.", valueName: "ref"))
    var externalRef: String?

    @Option(name: .customLong("consumer-org"), help: ArgumentHelp("The organisation acted for (delegation).", valueName: "orgno"))
    var consumerOrg: String?

    func run() throws {
        // Reached only when ClientInvocation did not take the arguments, which Entry handles.
        throw ExitCode(ClientCommands.apiUsage)
    }
}
