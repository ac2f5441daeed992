public import BrokerCore

/// A configuration with its keys loaded: what the daemon starts with and what a reload swaps in.
public struct LoadedConfiguration: Sendable {
    /// The configuration.
    public var configuration: BrokerConfiguration
    /// Keys of the profiles that loaded.
    public var credentials: [String: SigningCredentials]
    /// Profiles whose keys did not load, with why; they answer 503 until fixed.
    public var problems: [String: ConfigError]
    /// Platform Access Token issuers whose certificate and key loaded.
    public var platformAccessTokens: [String: PlatformAccessTokenIssuer] = [:]
    /// Platform Access Token issuers that did not load, with why.
    public var platformAccessTokenProblems: [String: ConfigError] = [:]

    /// Reads the file and every key. A file that does not parse throws; a profile whose key
    /// does not load is recorded in `problems`, and the others are served.
    public static func load(path: String, loader: KeyLoader = KeyLoader()) throws -> LoadedConfiguration {
        let configuration = try ConfigLoader.load(path: path)
        var credentials: [String: SigningCredentials] = [:]
        var problems: [String: ConfigError] = [:]
        for profile in configuration.profiles {
            do {
                credentials[profile.name] = try loader.load(profile, file: path)
            } catch let error as ConfigError {
                problems[profile.name] = error
            } catch {
                problems[profile.name] = ConfigError(.invalidKey, file: path, keyPath: "profiles.\(profile.name).key", "\(error)")
            }
        }
        var loaded = LoadedConfiguration(configuration: configuration, credentials: credentials, problems: problems)
        for settings in configuration.platformAccessTokens {
            do {
                let (key, chain) = try loader.load(settings, file: path)
                loaded.platformAccessTokens[settings.name] = PlatformAccessTokenIssuer(settings: settings, key: key, chain: chain)
            } catch let error as ConfigError {
                loaded.platformAccessTokenProblems[settings.name] = error
            } catch {
                loaded.platformAccessTokenProblems[settings.name] = ConfigError(.invalidKey, file: path, keyPath: "platform_access_tokens.\(settings.name)", "\(error)")
            }
        }
        return loaded
    }
}
