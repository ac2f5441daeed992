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
        // Over the path's bytes in place: every request is matched, the cached token's too, and
        // comparing through the string's views cost a tenth of a gateway call's checks.
        var path = path
        let (route, name) = path.withUTF8 { match(UnsafeRawBufferPointer($0)) }
        // An empty name too is a slice of the path: the gateway's API path follows its end.
        let utf8 = path.utf8
        return (route, path[utf8.index(utf8.startIndex, offsetBy: name.lowerBound)..<utf8.index(utf8.startIndex, offsetBy: name.upperBound)])
    }

    /// The route and where its name is in `path`.
    private static func match(_ path: UnsafeRawBufferPointer) -> (Route, Range<Int>) {
        let none = 0..<0
        if equals(path, "/healthz") { return (.healthz, none) }
        if equals(path, "/readyz") { return (.readyz, none) }
        if equals(path, "/metrics") { return (.metrics, none) }
        if equals(path, "/v1/profiles") { return (.profiles, none) }
        if equals(path, "/v1/exchange/id-porten") { return (.idPortenExchange, none) }
        if let rest = after(path, "/v1/token/") {
            guard let slash = firstSlash(path, in: rest) else { return (.token, rest) }
            return equals(UnsafeRawBufferPointer(rebasing: path[slash...]), "/refresh") ? (.refresh, rest.lowerBound..<slash) : (.unknown, none)
        }
        if let rest = after(path, "/v1/api/") {
            // The profile; what follows it is the API path, judged by the gateway.
            return (.api, rest.lowerBound..<(firstSlash(path, in: rest) ?? rest.upperBound))
        }
        if let name = after(path, "/v1/platform-access-token/"), firstSlash(path, in: name) == nil {
            return (.platformAccessToken, name)
        }
        return (.unknown, none)
    }

    private static func equals(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        bytes.count == text.utf8CodeUnitCount && after(bytes, text) != nil
    }

    /// Where what follows `prefix` is, when `bytes` starts with it.
    private static func after(_ bytes: UnsafeRawBufferPointer, _ prefix: StaticString) -> Range<Int>? {
        let count = prefix.utf8CodeUnitCount
        guard bytes.count >= count else { return nil }
        for offset in 0..<count where bytes[offset] != prefix.utf8Start[offset] { return nil }
        return count..<bytes.count
    }

    private static func firstSlash(_ bytes: UnsafeRawBufferPointer, in range: Range<Int>) -> Int? {
        range.first { bytes[$0] == UInt8(ascii: "/") }
    }
}
