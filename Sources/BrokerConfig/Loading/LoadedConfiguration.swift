import BrokerCrypto
import FoundationEssentials

/// A configuration with every key, certificate and trust file loaded: what `serve` starts with,
/// what a reload swaps in, and what `check-config` reports on. The one place where the
/// configuration and its keys are read, so that the three cannot drift apart.
package struct LoadedConfiguration: Sendable {
    /// The configuration.
    package var configuration: BrokerConfiguration
    /// Keys of the profiles that loaded.
    package var credentials: [String: SigningCredentials]
    /// Profiles whose keys did not load, with why; they answer 503 until fixed.
    package var problems: [String: ConfigError]
    /// Platform Access Token issuers whose certificate and key loaded.
    package var platformAccessKeys: [String: PlatformAccessKey] = [:]
    /// Platform Access Token issuers that did not load, with why.
    package var platformAccessTokenProblems: [String: ConfigError] = [:]
    /// The number of certificates in each environment's `ca_file`, by environment name.
    package var trustRoots: [String: Int] = [:]
    /// Environments whose `ca_file` cannot be used, with why. The daemon does not start with one
    /// (its upstream client could not be built); `check-config` reports it with the rest.
    package var environmentProblems: [String: ConfigError] = [:]
    /// What the key files held just before they were read: a later change shows against it.
    package var keyFileContents = KeyFileContents(paths: [])

    /// Every problem, each under the key path that names it (`profiles.NAME`,
    /// `platform_access_tokens.NAME`, `environments.NAME`), in that order and by name: what start-up,
    /// a reload and `check-config` report alike.
    package var allProblems: [(name: String, error: ConfigError)] {
        problems.sorted { $0.key < $1.key }.map { ("profiles.\($0.key)", $0.value) }
            + platformAccessTokenProblems.sorted { $0.key < $1.key }.map { ("platform_access_tokens.\($0.key)", $0.value) }
            + environmentProblems.sorted { $0.key < $1.key }.map { ("environments.\($0.key)", $0.value) }
    }

    /// Reads the file and everything it names. A file that does not parse throws; a profile,
    /// token issuer or trust file that does not load is recorded with why, and the rest is kept.
    package static func load(path: String, loader: KeyLoader = KeyLoader()) throws -> LoadedConfiguration {
        load(try ConfigLoader.load(path: path), loader: loader)
    }

    /// Reads everything `configuration` names, and not the file again: what a changed key file
    /// reloads, so that an edit to the configuration half done is not picked up with it.
    package static func load(_ configuration: BrokerConfiguration, loader: KeyLoader = KeyLoader()) -> LoadedConfiguration {
        let path = configuration.file
        let loader = loader.sharingKeys()
        var loaded = LoadedConfiguration(configuration: configuration, credentials: [:], problems: [:])
        // Read before the keys are: a change made while they load is seen as one afterwards.
        loaded.keyFileContents = KeyFileContents(paths: configuration.keyFiles)
        for profile in configuration.profiles {
            do {
                loaded.credentials[profile.name] = try loader.load(profile, file: path)
            } catch {
                loaded.problems[profile.name] = Self.configError(error, file: path, keyPath: "profiles.\(profile.name).key")
            }
        }
        for settings in configuration.platformAccessTokens {
            do {
                let (key, chain) = try loader.load(settings, file: path)
                loaded.platformAccessKeys[settings.name] = PlatformAccessKey(settings: settings, key: key, chain: chain)
            } catch {
                loaded.platformAccessTokenProblems[settings.name] = Self.configError(error, file: path, keyPath: "platform_access_tokens.\(settings.name)")
            }
        }
        for environment in configuration.environments.values {
            guard let caFile = environment.caFile else { continue }
            do {
                loaded.trustRoots[environment.name] = try Certificate.chain(pem: Array(try Data(contentsOf: URL(fileURLWithPath: caFile)))).count
            } catch {
                let reason = (error as? BrokerCryptoError)?.reason ?? "cannot be read"
                loaded.environmentProblems[environment.name] = ConfigError(
                    .invalidValue, file: path, keyPath: "environments.\(environment.name).ca_file", "\(caFile): \(reason)")
            }
        }
        return loaded
    }

    private static func configError(_ error: any Error, file: String, keyPath: String) -> ConfigError {
        (error as? ConfigError) ?? ConfigError(.invalidKey, file: file, keyPath: keyPath, "\(error)")
    }
}
