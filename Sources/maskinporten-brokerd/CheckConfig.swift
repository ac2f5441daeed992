import ArgumentParser
import BrokerClient
import BrokerConfig

/// `check-config`: validates the configuration and every key without starting anything.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate the configuration file and every key, without starting anything.",
        discussion:
            "Prints each profile's environment, client id, kid, key size and algorithm. On error, names the file, the key path and what is wrong, and exits 1. Checks what serve checks on this host too (the socket's directory and group, the allow lists' users and groups), in the same words: errors are what serve refuses, warnings what it would serve anyway. Run by hand, with the package's unit installed, it reads keys named as credentials from the files the unit loads, and checks every file serve reads as the user the unit runs it as."
    )

    @OptionGroup var options: ConfigOption

    @Flag(name: .long, help: "Print only errors and warnings (the unit's ExecReload= runs it so).")
    var quiet = false

    func run() throws {
        let path = ConfigLoader.resolvePath(explicit: options.config)
        // By hand there is no $CREDENTIALS_DIRECTORY: keys named as credentials are read from
        // the files the installed unit loads them from, and files are checked as its user.
        let unit = ServiceUnit.load()
        let check = ConfigCheck.run(path: path, loader: KeyLoader(unitCredentials: unit?.credentials ?? [:]), unit: unit)
        if !quiet { print(check.report, terminator: "") }
        for error in check.errors {
            printError("error: \(error)")
        }
        for warning in check.warnings {
            printError("warning: \(warning)")
        }
        if !check.errors.isEmpty { throw ExitCode(1) }
    }
}
