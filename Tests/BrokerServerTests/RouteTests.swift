import Testing

@testable import BrokerServer

@Suite("Routes from request paths")
struct RouteTests {
    @Test(
        "each path names its route, and the name in it is a slice of the path",
        arguments: [
            ("/healthz", Route.healthz, ""), ("/readyz", .readyz, ""), ("/metrics", .metrics, ""), ("/v1/profiles", .profiles, ""),
            ("/v1/exchange/id-porten", .idPortenExchange, ""), ("/v1/token/demo", .token, "demo"), ("/v1/token/", .token, ""),
            ("/v1/token/demo/refresh", .refresh, "demo"), ("/v1/token/demo/other", .unknown, ""), ("/v1/token/demo/refresh/x", .unknown, ""),
            ("/v1/api/demo/notifications/api/v1/orders", .api, "demo"), ("/v1/api/demo", .api, "demo"), ("/v1/api/", .api, ""),
            ("/v1/platform-access-token/pat", .platformAccessToken, "pat"), ("/v1/platform-access-token/a/b", .unknown, ""),
            ("/healthz/", .unknown, ""), ("/healthzz", .unknown, ""), ("/v1/tokens/demo", .unknown, ""), ("", .unknown, ""), ("/", .unknown, ""),
            ("/v1/token/blåbær", .token, "blåbær"),
        ])
    func matching(_ path: String, _ route: Route, _ name: String) {
        let matched = Route.match(path)
        #expect(matched.route == route)
        #expect(matched.name == name)
    }

    @Test("the gateway's API path follows the profile's name, an empty name too")
    func apiPath() {
        for (path, rest) in [("/v1/api/demo/notifications/x", "/notifications/x"), ("/v1/api//x", "/x"), ("/v1/api/demo", "")] {
            let (_, name) = Route.match(path)
            #expect(path[name.endIndex...] == rest)
        }
    }
}
