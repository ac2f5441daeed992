/// Where one Maskinporten and one Altinn platform live: the built-in ones (Digdir's and Altinn's addresses), or one
/// defined under `environments` (such as the local emulator).
package struct MaskinportenEnvironment: Sendable, Hashable {
    /// The name used in profiles (`prod`, `tt02`, `local`, ...).
    package var name: String
    /// Maskinporten's issuer: the exact `aud` of every grant.
    package var issuer: String
    /// Where grants are exchanged for tokens.
    package var tokenEndpoint: String
    /// The Altinn platform base URL (no trailing slash), when this environment has one.
    package var altinnPlatform: String?
    /// Extra PEM trust anchors for `https` to this environment.
    package var caFile: String?
    /// Digdir's self-service API for clients (`.../api/v1/clients`), which key rotation uses.
    package var selfServiceAPI: String?
    /// How upstream calls reach this environment: directly or through an HTTP proxy.
    package var proxy: ProxySettings = .direct

    /// Creates an environment.
    package init(
        name: String, issuer: String, tokenEndpoint: String? = nil, altinnPlatform: String?, caFile: String? = nil, selfServiceAPI: String? = nil
    ) {
        self.selfServiceAPI = selfServiceAPI.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.name = name
        self.issuer = issuer
        self.tokenEndpoint = tokenEndpoint ?? Self.defaultTokenEndpoint(issuer: issuer)
        self.altinnPlatform = altinnPlatform.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.caFile = caFile
    }

    /// Maskinporten's token endpoint is the issuer followed by `token`.
    static func defaultTokenEndpoint(issuer: String) -> String {
        issuer.hasSuffix("/") ? issuer + "token" : issuer + "/token"
    }

    /// The environments every installation knows.
    package static let builtIn: [String: MaskinportenEnvironment] = {
        let production = "https://maskinporten.no/"
        let test = "https://test.maskinporten.no/"
        let testSelfService = "https://api.test.samarbeid.digdir.no/api/v1/clients"
        var table: [String: MaskinportenEnvironment] = [
            "prod": .init(
                name: "prod", issuer: production, altinnPlatform: "https://platform.altinn.no", selfServiceAPI: "https://api.samarbeid.digdir.no/api/v1/clients"
            ),
            "tt02": .init(
                name: "tt02", issuer: test, altinnPlatform: "https://platform.tt02.altinn.no", selfServiceAPI: testSelfService),
        ]
        for name in ["at22", "at23", "at24", "yt01"] {
            table[name] = .init(name: name, issuer: test, altinnPlatform: "https://platform.\(name).altinn.cloud", selfServiceAPI: testSelfService)
        }
        return table
    }()

    /// Names Digdir's Samarbeidsportalen uses for Maskinporten's environments, which users copy
    /// from it: this broker names environments as Altinn does, and says so instead of "unknown".
    static let portalNames: [String: (portal: String, environment: String)] = [
        "ver2": ("test", "tt02"),
        "test": ("test", "tt02"),
        "production": ("production", "prod"),
        "produksjon": ("production", "prod"),
    ]
}
