import BrokerClient
import Testing

/// Which command lines the small `maskinporten-broker` runs itself; everything else goes to
/// `maskinporten-brokerd`, whose parser explains it.
@Suite("ClientInvocation")
struct ClientInvocationTests {
    @Test("well-formed token calls, options in either form and order, the last repeat wins")
    func token() {
        #expect(ClientInvocation(["token", "demo"]) == .token(.init(profile: "demo")))
        #expect(
            ClientInvocation(["token", "--json", "demo", "--socket", "/s", "--min-valid=60"])
                == .token(.init(profile: "demo", socket: "/s", minValid: 60, json: true)))
        #expect(ClientInvocation(["token", "--socket=/a", "demo", "--socket", "/b"]) == .token(.init(profile: "demo", socket: "/b")))
        #expect(ClientInvocation(["token", "a b/c?d"]) == .token(.init(profile: "a b/c?d")))
    }

    @Test("the delegation options, and the request target they make")
    func delegation() throws {
        let request = try #require(
            ClientInvocation(["token", "vendor", "--system-user-org", "991825827", "--external-ref=a b", "--consumer-org", "910000004"]))
        let expected = ClientCommands.TokenRequest(profile: "vendor", systemUserOrg: "991825827", externalRef: "a b", consumerOrg: "910000004")
        #expect(request == .token(expected))
        #expect(expected.target == "/v1/token/vendor?system_user_org=991825827&system_user_external_ref=a%20b&consumer_org=910000004")
        #expect(ClientCommands.TokenRequest(profile: "demo", minValid: 30).target == "/v1/token/demo?min_valid=30")
    }

    @Test("well-formed health calls, with the default timeout of 5 s")
    func health() {
        #expect(ClientInvocation(["health"]) == .health(socket: nil, ready: false, timeoutSeconds: 5))
        #expect(ClientInvocation(["health", "--ready", "--timeout", "2", "--socket=/s"]) == .health(socket: "/s", ready: true, timeoutSeconds: 2))
    }

    @Test(
        "anything else is handed on",
        arguments: [
            [], ["serve"], ["dev"], ["--help"], ["token"], ["token", "a", "b"], ["token", "demo", "--help"], ["token", "demo", "-h"],
            ["token", "demo", "--min-valid", "soon"], ["token", "demo", "--min-valid"], ["token", "demo", "--socket"],
            ["token", "demo", "--socket", "--json"], ["token", "demo", "--json=yes"], ["token", "demo", "--ready"], ["token", "--", "demo"],
            ["token", "-"], ["token", "demo", "--min-valid", "-5"], ["health", "extra"], ["health", "--timeout", "x"], ["health", "--json"],
            ["Token", "demo"],
        ])
    func handedOn(arguments: [String]) {
        #expect(ClientInvocation(arguments) == nil)
    }

    @Test("profile names are percent-encoded so that they cannot change the path or query")
    func percentEncoding() {
        #expect(ClientCommands.percentEncode("demo-1_x.y") == "demo-1_x.y")
        #expect(ClientCommands.percentEncode("a/../b?c=d e") == "a%2F..%2Fb%3Fc%3Dd%20e")
        #expect(ClientCommands.percentEncode("\u{7}ø") == "%07%C3%B8")
    }
}
