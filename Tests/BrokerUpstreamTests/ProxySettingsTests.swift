import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerConfig
@testable import BrokerTokens
@testable import BrokerUpstream

@Suite("Proxy settings: the configuration, the daemon's environment, no_proxy", .sharedKeys)
struct ProxySettingsTests {
    @Test(
        "no_proxy as curl reads it: suffixes, a leading dot, *, ports, IP addresses",
        arguments: [
            ("example.com", "example.com", 443, true), ("example.com", "api.example.com", 443, true), ("example.com", "notexample.com", 443, false),
            (".example.com", "api.example.com", 443, true), (".example.com", "example.com", 443, true), ("*", "maskinporten.no", 443, true),
            ("example.com:8443", "example.com", 8443, true), ("example.com:8443", "example.com", 443, false), ("10.1.2.3", "10.1.2.3", 443, true),
            ("10.1.2.3", "10.1.2.30", 443, false), ("[fd00::1]:443", "fd00::1", 443, true), ("a.com, b.com ,c.com", "x.b.com", 443, true),
            ("", "example.com", 443, false), ("EXAMPLE.com", "Api.Example.COM.", 443, true),
        ])
    func noProxy(_ list: String, _ host: String, _ port: Int, _ bypassed: Bool) {
        #expect(NoProxy(list).matches(host: host, port: port) == bypassed)
    }

    @Test("proxy URLs: credentials decoded and never shown; errors say what to write")
    func proxyURLs() throws {
        let server = try ProxySettings.server(from: "http://svc%40corp:p%3Ass@proxy.example.com:3128")
        #expect(server.host == "proxy.example.com" && server.port == 3128 && server.username == "svc@corp" && server.password == "p:ss")
        #expect(server.description == "http://svc@corp:***@proxy.example.com:3128")
        #expect(try ProxySettings.server(from: "http://proxy").port == 80)
        #expect(try ProxySettings.server(from: "proxy:3128", lenient: true).description == "http://proxy:3128")
        #expect(try ProxySettings.server(from: "http://[fd00::1]:3128").description == "http://[fd00::1]:3128")
        for (text, reason) in [
            ("https://proxy:3128", "uses https://"), ("proxy:3128", "is not a URL"), ("http://proxy:3128/path", "without a path"),
            ("socks5://proxy:1080", "uses socks5://"),
        ] {
            #expect(throws: ProxySettings.Invalid.self) { try ProxySettings.server(from: text) }
            do {
                _ = try ProxySettings.server(from: text)
            } catch {
                #expect(error.reason.contains(reason), "\(text): \(error.reason)")
            }
        }
    }

    @Test("where a proxy comes from: the environment's proxy:, the top level's, https_proxy; none for loopback; proxy: none opts out")
    func resolution() throws {
        let fixture = try ConfigFixture()
        let yaml = """
            proxy: http://top.example.com:3128
            no_proxy: [.internal.example.com]
            environments:
              corp:
                maskinporten_issuer: https://maskinporten.corp.example/
                proxy: http://user:secret@corp-proxy.example.com:8080
              open:
                maskinporten_issuer: https://maskinporten.open.example/
                proxy: none
              local:
                maskinporten_issuer: http://127.0.0.1:18080/
              prod:
                proxy: http://prod-proxy.example.com:3128
            """ + "\n" + ConfigFixture.profile
        let path = try fixture.write(yaml)
        let environment = ["https_proxy": "http://env-proxy:3128", "no_proxy": "example.org"]
        let configuration = try ConfigLoader.load(path: path, environment: environment)
        let corp = try #require(configuration.environments["corp"]?.proxy)
        #expect(corp.server?.description == "http://user:***@corp-proxy.example.com:8080")
        #expect(corp.source == .configuration("environments.corp.proxy") && corp.bypass.description == "internal.example.com")
        #expect(corp.proxy(for: "https://maskinporten.corp.example/token")?.host == "corp-proxy.example.com")
        #expect(corp.proxy(for: "https://auth.internal.example.com/x") == nil)
        #expect(corp.proxy(for: "https://127.0.0.1:8443/x") == nil, "loopback never goes through a proxy")
        #expect(configuration.environments["open"]?.proxy.server == nil)
        #expect(configuration.environments["local"]?.proxy.proxy(for: "http://127.0.0.1:18080/token") == nil)
        #expect(configuration.profiles[0].environment.name == "tt02")
        #expect(configuration.profiles[0].environment.proxy.server?.host == "top.example.com", "a built-in environment takes the top level's")
        #expect(configuration.environmentsInUse.map(\.name) == ["corp", "local", "open", "tt02"])

        // prod is built in: only its proxy is set under environments.
        let prod = try fixture.load(yaml.replacingOccurrences(of: "environment: tt02", with: "environment: prod"))
        #expect(prod.profiles[0].environment.proxy.server?.host == "prod-proxy.example.com")
        #expect(prod.profiles[0].environment.issuer == "https://maskinporten.no/")

        // Without proxy: in the file, the daemon's environment decides.
        let plain = try ConfigLoader.load(path: try fixture.write(ConfigFixture.profile), environment: environment)
        let fromEnvironment = plain.profiles[0].environment.proxy
        #expect(fromEnvironment.server?.description == "http://env-proxy:3128" && fromEnvironment.source == .environment("https_proxy"))
        #expect(fromEnvironment.bypassSource == .environment("no_proxy") && fromEnvironment.bypass.matches(host: "api.example.org", port: 443))
        let upper = try ConfigLoader.load(path: try fixture.write(yaml), environment: ["HTTPS_PROXY": "proxy:3128"])
        #expect(upper.profiles[0].environment.proxy.server?.host == "top.example.com", "the file's proxy: wins over the environment")
        let loopback = try ConfigLoader.load(
            path: try fixture.write("environments:\n  local:\n    maskinporten_issuer: http://127.0.0.1:18080/\n" + ConfigFixture.profile),
            environment: environment)
        #expect(loopback.environments["local"]?.proxy == .direct, "every endpoint on loopback: the daemon's https_proxy does not apply")
        #expect(try ConfigLoader.load(path: try fixture.write(ConfigFixture.profile), environment: [:]).profiles[0].environment.proxy == .direct)
    }

    @Test("a bad proxy is refused with its key and what to write; a bad https_proxy names the variable; credentials never in the message")
    func badProxies() throws {
        let fixture = try ConfigFixture()
        let error = #expect(throws: ConfigError.self) {
            try fixture.load("proxy: https://user:hunter2@proxy:3128\n" + ConfigFixture.profile)
        }
        #expect(error?.keyPath == "proxy" && error?.message.contains("uses https://") == true, "\(error.map { "\($0)" } ?? "")")
        #expect(error.map { "\($0)" }?.contains("hunter2") == false)
        let variable = #expect(throws: ConfigError.self) {
            try ConfigLoader.load(path: try fixture.write(ConfigFixture.profile), environment: ["https_proxy": "ftp://user:hunter2@proxy"])
        }
        #expect(variable?.message.contains("https_proxy in the daemon's environment uses ftp://") == true, "\(variable.map { "\($0)" } ?? "")")
        #expect(variable.map { "\($0)" }?.contains("hunter2") == false)
        let redefined = #expect(throws: ConfigError.self) {
            try fixture.load("environments:\n  prod:\n    maskinporten_issuer: https://x.example/\n" + ConfigFixture.profile)
        }
        #expect(redefined?.message.contains("only its proxy and no_proxy may be set here") == true)
    }

    @Test("a reload changing only the proxy's password makes a new cache (the password is not in the printed settings), carrying the token")
    func reloadIdentity() throws {
        let fixture = try ConfigFixture()
        func profile(_ proxy: String) throws -> (Profile, SigningCredentials) {
            let path = try fixture.write("proxy: \(proxy)\n" + ConfigFixture.profile)
            let configuration = try ConfigLoader.load(path: path, environment: [:])
            return (configuration.profiles[0], try KeyLoader(environment: [:]).load(configuration.profiles[0], file: path))
        }
        let (first, credentials) = try profile("http://u:first-secret-4f1c@proxy:3128")
        let (second, _) = try profile("http://u:second-secret-9a2b@proxy:3128")
        let (other, _) = try profile("http://other-proxy:3128")
        let refresh = RefreshSettings()
        #expect(TokenBroker.identity(first, credentials, refresh) != TokenBroker.identity(second, credentials, refresh))
        // Held as a SHA-256 digest, not as the settings' text with the password in it.
        #expect(TokenBroker.identity(first, credentials, refresh).count == 32)
        #expect(TokenBroker.tokenIdentity(first, refresh) == TokenBroker.tokenIdentity(second, refresh))
        #expect(TokenBroker.tokenIdentity(first, refresh) == TokenBroker.tokenIdentity(other, refresh))
        #expect(TokenBroker.identity(first, credentials, refresh) != TokenBroker.identity(other, credentials, refresh))
    }

    @Test("the probe's CONNECT carries Basic credentials; status lines are read and cleaned")
    func probe() {
        let request = ProxyConnect.request(ProxySettings.Server(host: "p", port: 1, username: "u", password: "pw"), host: "maskinporten.no", port: 443)
        #expect(request == "CONNECT maskinporten.no:443 HTTP/1.1\r\nHost: maskinporten.no:443\r\nProxy-Authorization: Basic dTpwdw==\r\n\r\n")
        #expect(ProxyConnect.parse(Array("HTTP/1.0 403 Access violation".utf8)) == ProxyConnect.Answer(status: 403, reason: "Access violation"))
        #expect(ProxyConnect.parse(Array("HTTP/1.1 503".utf8)) == ProxyConnect.Answer(status: 503, reason: ""))
        #expect(ProxyConnect.parse(Array("HTTP/1.1 502 bad\u{1b}[0m".utf8))?.reason == "bad [0m", "control characters never reach an error")
        #expect(ProxyConnect.parse(Array("SSH-2.0-OpenSSH".utf8)) == nil)
    }
}
