import ArgumentParser

/// The `maskinporten-broker` command line (SPEC.md "Command line").
@main
struct MaskinportenBroker: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "maskinporten-broker",
        abstract: "Holds Maskinporten keys and hands Altinn tokens to local services over a Unix socket.",
        subcommands: [Serve.self, TokenCommand.self, HealthCommand.self, CheckConfig.self, SignGrant.self, EmulatorCommand.self, DevCommand.self]
    )
}

/// `--config PATH`, shared by the commands that read the configuration.
struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp(
        "The configuration file.",
        discussion: "Default: $MASKINPORTEN_BROKER_CONFIG, else /etc/maskinporten-broker/broker.yaml.",
        valueName: "path"
    ))
    var config: String?
}
