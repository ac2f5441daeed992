import NIOHTTP1

/// The routes of the socket API (docs/socket-api.md), matched once per request by both the
/// NIO handler and the fast path. The raw value is the route's label in the metrics.
enum Route: String, Sendable, CaseIterable {
    case healthz
    case readyz
    case metrics
    case token
    case refresh
    case profiles
    case platformAccessToken = "platform_access_token"
    case idPortenExchange = "id_porten_exchange"
    /// `ANY /v1/api/{profile}/{path}`: the Altinn API gateway (`Router.forward`).
    case api
    /// No such route: 404.
    case unknown

    /// The one method each route takes; another gets 405 with `Allow`. (The gateway takes any.)
    var method: HTTPMethod {
        switch self {
        case .refresh, .idPortenExchange: .POST
        default: .GET
        }
    }

    /// The route `path` (without its query) names, with the name in it for the routes that
    /// have one (a profile, a Platform Access Token). A name never holds `/`, and may be empty
    /// (`/v1/token/` asks for the profile named "", which does not exist).
    static func match(_ path: String) -> (route: Route, name: Substring) {
        switch path {
        case "/healthz": return (.healthz, "")
        case "/readyz": return (.readyz, "")
        case "/metrics": return (.metrics, "")
        case "/v1/profiles": return (.profiles, "")
        case "/v1/exchange/id-porten": return (.idPortenExchange, "")
        default: break
        }
        if let rest = path.dropPrefix("/v1/token/") {
            guard let slash = rest.utf8.firstIndex(of: UInt8(ascii: "/")) else { return (.token, rest) }
            return rest[slash...] == "/refresh" ? (.refresh, rest[..<slash]) : (.unknown, "")
        }
        if let rest = path.dropPrefix("/v1/api/") {
            // The profile; what follows it is the API path, judged by the gateway.
            return (.api, rest[..<(rest.utf8.firstIndex(of: UInt8(ascii: "/")) ?? rest.endIndex)])
        }
        if let name = path.dropPrefix("/v1/platform-access-token/"), !name.utf8.contains(UInt8(ascii: "/")) {
            return (.platformAccessToken, name)
        }
        return (.unknown, "")
    }
}

extension String {
    /// What follows `prefix`, or nil when the string does not start with it.
    fileprivate func dropPrefix(_ prefix: String) -> Substring? {
        utf8.starts(with: prefix.utf8) ? self[utf8.index(startIndex, offsetBy: prefix.utf8.count)...] : nil
    }
}
