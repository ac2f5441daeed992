package import BrokerConfig
package import BrokerTokens

/// What the daemon serves right now, made from a loaded configuration and replaced whole on
/// reload: the configuration, who may use what, and what cannot be served and why.
package struct ServingState: Sendable {
    /// The configuration in force.
    package var configuration: BrokerConfiguration
    /// Who may use each profile.
    package var access: [String: AccessPolicy]
    /// Each profile by name (a variant request reads its `delegation:`).
    package var profiles: [String: Profile]
    /// Profiles that cannot be served (their keys did not load), with the reason.
    package var unavailable: [String: String]
    /// Platform Access Token issuers, by name.
    package var platformAccessTokens: [String: PlatformAccessTokenIssuer]
    /// Who may fetch each Platform Access Token.
    package var platformAccessTokenAccess: [String: AccessPolicy]
    /// Platform Access Tokens that cannot be served, with the reason.
    package var unavailablePlatformAccessTokens: [String: String]
    /// Who may use the ID-porten exchange, when it is enabled.
    package var idPortenAccess: AccessPolicy?

    /// The state for `loaded`, with its allow lists resolved.
    package init(_ loaded: LoadedConfiguration) {
        configuration = loaded.configuration
        var access: [String: AccessPolicy] = [:]
        for profile in configuration.profiles { access[profile.name] = AccessPolicy(profile.allow) }
        self.access = access
        profiles = Dictionary(configuration.profiles.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        unavailable = loaded.problems.mapValues(\.description)
        platformAccessTokens = loaded.platformAccessKeys.mapValues(PlatformAccessTokenIssuer.init)
        var tokenAccess: [String: AccessPolicy] = [:]
        for settings in configuration.platformAccessTokens { tokenAccess[settings.name] = AccessPolicy(settings.allow) }
        platformAccessTokenAccess = tokenAccess
        unavailablePlatformAccessTokens = loaded.platformAccessTokenProblems.mapValues(\.description)
        idPortenAccess = configuration.idPortenExchange.map { AccessPolicy($0.allow) }
    }
}
