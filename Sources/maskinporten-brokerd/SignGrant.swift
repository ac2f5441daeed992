import ArgumentParser
import BrokerClient
import BrokerConfig
import BrokerUpstream

/// `sign-grant`: one signed JWT grant, for trying a profile against Maskinporten by hand.
struct SignGrant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign-grant",
        abstract: "Print one signed JWT grant for a profile, for debugging by hand against Maskinporten.",
        discussion: """
            The grant is valid for 120 seconds and has a fresh jti. Exchange it with:
              curl -d grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer -d assertion=GRANT TOKEN_ENDPOINT
            """
    )

    @Argument(help: "The profile to sign for.")
    var profile: String

    @OptionGroup var options: ConfigOption

    func run() throws {
        let path = ConfigLoader.resolvePath(explicit: options.config)
        do {
            let configuration = try ConfigLoader.load(path: path)
            guard let profile = configuration.profile(named: profile) else {
                let known = configuration.profiles.map(\.name).joined(separator: ", ")
                printError("error: \(path): no profile \"\(profile)\" (profiles: \(known.isEmpty ? "none" : known))")
                throw ExitCode(1)
            }
            let credentials = try KeyLoader().load(profile, file: path)
            print(try GrantBuilder(profile: profile, credentials: credentials).makeGrant())
        } catch let exit as ExitCode {
            throw exit
        } catch {
            printError("error: \(error)")
            throw ExitCode(1)
        }
    }
}
