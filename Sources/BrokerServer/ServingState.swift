package import BrokerConfig
package import BrokerTokens

/// What the daemon serves right now, made from a loaded configuration and replaced whole on
/// reload: the configuration, who may use what, and what cannot be served and why. A class
/// whose fields never change: each request takes a reference to it, not a copy of every field.
package final class ServingState: Sendable {
    /// The configuration in force.
    package let configuration: BrokerConfiguration
    /// Who may use each profile.
    package let access: [String: AccessPolicy]
    /// Profiles that cannot be served (their keys did not load), with the reason.
    package let unavailable: [String: String]
    /// Platform Access Token issuers, by name.
    package let platformAccessTokens: [String: PlatformAccessTokenIssuer]
    /// Who may fetch each Platform Access Token.
    package let platformAccessTokenAccess: [String: AccessPolicy]
    /// Platform Access Tokens that cannot be served, with the reason.
    package let unavailablePlatformAccessTokens: [String: String]
    /// Who may use the ID-porten exchange, when it is enabled.
    package let idPortenAccess: AccessPolicy?
    /// Each profile's `delegation:` section, by profile name, for the profiles that have one.
    package let delegations: [String: DelegationSettings]
    /// Each profile's gateway, by profile name, for the profiles that have one.
    package let gateways: [String: GatewayRoute]

    /// The state for `loaded`, with its allow lists resolved.
    package init(_ loaded: LoadedConfiguration) {
        let configuration = loaded.configuration
        self.configuration = configuration
        var access: [String: AccessPolicy] = [:]
        for profile in configuration.profiles { access[profile.name] = AccessPolicy(profile.allow) }
        self.access = access
        unavailable = loaded.problems.mapValues(\.description)
        platformAccessTokens = loaded.platformAccessKeys.mapValues(PlatformAccessTokenIssuer.init)
        var tokenAccess: [String: AccessPolicy] = [:]
        for settings in configuration.platformAccessTokens { tokenAccess[settings.name] = AccessPolicy(settings.allow) }
        platformAccessTokenAccess = tokenAccess
        unavailablePlatformAccessTokens = loaded.platformAccessTokenProblems.mapValues(\.description)
        idPortenAccess = configuration.idPortenExchange.map { AccessPolicy($0.allow) }
        // Not a dictionary of whole profiles: at over a kilobyte each in its buckets, that was a
        // tenth of what a profile costs, to answer what `access` and these two answer.
        var delegations: [String: DelegationSettings] = [:]
        var gateways: [String: GatewayRoute] = [:]
        for profile in configuration.profiles {
            delegations[profile.name] = profile.delegation
            gateways[profile.name] = profile.gateway.map { GatewayRoute(settings: $0, platform: profile.environment.altinnPlatform) }
        }
        self.delegations = delegations
        self.gateways = gateways
    }
}

/// A profile's gateway as each of its calls reads it, made once per configuration: a class, so
/// that a call takes a reference rather than a copy of the whole profile.
package final class GatewayRoute: Sendable {
    /// The profile's `gateway:` section.
    let settings: GatewaySettings
    /// The profile's environment's Altinn platform base URL, when it has one.
    let platform: String?
    /// `settings.timeoutSeconds`.
    let timeout: Duration

    init(settings: GatewaySettings, platform: String?) {
        self.settings = settings
        self.platform = platform
        timeout = .seconds(settings.timeoutSeconds)
    }
}
