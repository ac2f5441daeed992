import BrokerCrypto
import BrokerPOSIX
import FoundationEssentials

/// How one environment's upstream calls leave the host: directly, or through an HTTP proxy
/// with CONNECT. Resolved when the configuration is read: the environment's `proxy:` (or the
/// top level's), else `https_proxy`/`HTTPS_PROXY` and `no_proxy`/`NO_PROXY` from the daemon's
/// environment. Loopback endpoints never go through a proxy.
package struct ProxySettings: Sendable, Hashable {
    /// An HTTP proxy: `http://[USER[:PASSWORD]@]HOST[:PORT]`.
    package struct Server: Sendable, Hashable, CustomStringConvertible {
        /// The proxy's host name or address (IPv6 without brackets).
        package var host: String
        /// The proxy's port (80 when the URL names none, as for any `http://` URL).
        package var port: Int
        /// Basic credentials, percent-decoded. Never printed: see `description`.
        package var username: String?
        package var password: String?

        /// The proxy as `http://host:port`, with `USER:***@` when it has credentials: the only
        /// form that reaches a log line, an error or `check-config`.
        package var description: String {
            let shownHost = host.contains(":" as Character) ? "[\(host)]" : host
            let user = username.map { "\(LogText.printable($0)):***@" } ?? ""
            return "http://\(user)\(shownHost):\(port)"
        }
    }

    /// Where a setting came from, for `check-config`.
    package enum Source: Sendable, Hashable, CustomStringConvertible {
        /// The configuration file, at this key (`proxy`, `environments.corp.proxy`).
        case configuration(String)
        /// The daemon's environment, in this variable.
        case environment(String)

        package var description: String {
            switch self {
            case .configuration(let key): "from \(key) in the configuration"
            case .environment(let variable): "from \(variable) in the daemon's environment"
            }
        }
    }

    /// The proxy, or nil: every call goes directly.
    package var server: Server?
    /// Where `server` came from (or, with no server, what said so: `proxy: none`).
    package var source: Source?
    /// Hosts reached directly although a proxy is set.
    package var bypass: NoProxy = NoProxy()
    /// Where `bypass` came from.
    package var bypassSource: Source?

    /// No proxy.
    package static let direct = ProxySettings()

    /// A digest of the proxy's credentials: what tells two settings apart that print the same
    /// (`USER:***`), so that a reload changing only the password takes effect.
    package var credentialsFingerprint: String {
        guard let server, server.username != nil || server.password != nil else { return "" }
        return Digest.fingerprint("\(server.username ?? "")\u{0}\(server.password ?? "")")
    }

    /// Creates settings.
    package init(server: Server? = nil, source: Source? = nil, bypass: NoProxy = NoProxy(), bypassSource: Source? = nil) {
        self.server = server
        self.source = source
        self.bypass = bypass
        self.bypassSource = bypassSource
    }

    /// The proxy a call to `host:port` goes through; nil: directly.
    package func proxy(forHost host: String, port: Int) -> Server? {
        guard let server, !Self.isLoopback(host), !bypass.matches(host: host, port: port) else { return nil }
        return server
    }

    /// The proxy a call to `url` goes through; nil: directly.
    package func proxy(for url: String) -> Server? {
        guard server != nil, let components = URLComponents(string: url), let host = components.host else { return nil }
        return proxy(forHost: host, port: components.port ?? (components.scheme?.lowercased() == "http" ? 80 : 443))
    }

    // MARK: - Reading

    /// Why a proxy URL is not usable; the text says what to write instead.
    package struct Invalid: Error, Sendable {
        package var reason: String
    }

    /// Parses `http://[USER[:PASSWORD]@]HOST[:PORT][/]`. `lenient` (for the environment
    /// variables, as curl reads them) also takes `HOST:PORT` without a scheme. The reason never
    /// holds the credentials.
    package static func server(from text: String, lenient: Bool = false) throws(Invalid) -> Server {
        var text = text.trimmed()
        if lenient, !text.containsText("://") { text = "http://" + text }
        guard text.containsText("://"), let components = URLComponents(string: text), let scheme = components.scheme?.lowercased() else {
            throw Invalid(reason: "is not a URL: write http://HOST:PORT (for example http://proxy.example.com:3128)")
        }
        guard scheme == "http" else {
            throw Invalid(
                reason: "uses \(scheme)://: the broker speaks to proxies in plain HTTP and tunnels TLS through them with CONNECT; write http://HOST:PORT")
        }
        guard let host = components.host, !host.isEmpty else { throw Invalid(reason: "has no host: write http://HOST:PORT") }
        guard components.path.isEmpty || components.path == "/", components.query == nil, components.fragment == nil else {
            throw Invalid(reason: "must be only http://HOST:PORT, without a path or query")
        }
        if let port = components.port, !(1...65535).contains(port) { throw Invalid(reason: "has port \(port), outside 1-65535") }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return Server(
            host: bare, port: components.port ?? 80, username: components.percentEncodedUser.map { PercentEncoding.decode($0) ?? $0 },
            password: components.percentEncodedPassword.map { PercentEncoding.decode($0) ?? $0 })
    }

    /// The settings the daemon's environment gives, as curl reads it: `https_proxy` (or
    /// `HTTPS_PROXY`) for the proxy, `no_proxy` (or `NO_PROXY`) for the hosts that bypass it.
    /// The lower-case name wins when both are set. Nil: the variables name no proxy.
    package static func fromEnvironment(_ environment: [String: String]) throws(Invalid) -> ProxySettings? {
        guard let (variable, value) = first(["https_proxy", "HTTPS_PROXY"], in: environment) else { return nil }
        let server: Server
        do {
            server = try Self.server(from: value, lenient: true)
        } catch {
            throw Invalid(reason: "\(variable) in the daemon's environment \(error.reason)")
        }
        var settings = ProxySettings(server: server, source: .environment(variable))
        if let (name, list) = first(["no_proxy", "NO_PROXY"], in: environment) {
            settings.bypass = NoProxy(list)
            settings.bypassSource = .environment(name)
        }
        return settings
    }

    private static func first(_ names: [String], in environment: [String: String]) -> (String, String)? {
        for name in names {
            if let value = environment[name], !value.trimmed().isEmpty { return (name, value) }
        }
        return nil
    }

    /// 127.0.0.0/8, ::1 and `localhost`: never through a proxy, and the only hosts plain
    /// `http://` may be used for.
    package static func isLoopback(_ host: String) -> Bool {
        let bare = (host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host).lowercased()
        if bare == "localhost" || bare.hasSuffix(".localhost") || bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
    }
}

/// The hosts that bypass a proxy, as `no_proxy` lists them: comma- or space-separated entries,
/// each a host that matches itself and its subdomains (`example.com`), a domain with a leading
/// dot that does the same (`.example.com`), an IP address, either with `:PORT` to match that
/// port only, or `*` for every host.
package struct NoProxy: Sendable, Hashable, CustomStringConvertible {
    struct Rule: Sendable, Hashable {
        var domain: String
        var port: Int?
    }

    private(set) var everything = false
    private(set) var rules: [Rule] = []

    /// No host bypasses the proxy.
    package init() {}

    /// The rules in `list`.
    package init(_ list: String) {
        for entry in list.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
            var text = entry.lowercased()
            if text == "*" {
                everything = true
                continue
            }
            var port: Int?
            if text.hasPrefix("[") {
                // [::1]:8080 or [fe80::1]
                guard let close = text.firstIndex(of: "]") else { continue }
                let rest = text[text.index(after: close)...]
                if rest.hasPrefix(":") { port = Int(rest.dropFirst()) }
                text = String(text[text.index(after: text.startIndex)..<close])
            } else if text.filter({ $0 == ":" }).count == 1, let colon = text.firstIndex(of: ":") {
                port = Int(text[text.index(after: colon)...])
                text = String(text[..<colon])
            }
            while text.hasPrefix(".") || text.hasPrefix("*.") { text = String(text.drop { $0 == "." || $0 == "*" }) }
            if text.hasSuffix(".") { text = String(text.dropLast()) }
            guard !text.isEmpty else { continue }
            rules.append(Rule(domain: text, port: port))
        }
    }

    /// Whether a call to `host:port` bypasses the proxy.
    package func matches(host: String, port: Int) -> Bool {
        if everything { return true }
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name.hasSuffix(".") { name = String(name.dropLast()) }
        return rules.contains { rule in
            if let rulePort = rule.port, rulePort != port { return false }
            return name == rule.domain || name.hasSuffix("." + rule.domain)
        }
    }

    /// Whether no host bypasses the proxy.
    package var isEmpty: Bool { !everything && rules.isEmpty }

    /// The rules as a list (`*` or `example.com, .corp:8443`).
    package var description: String {
        if everything { return "*" }
        return rules.map { rule in
            let host = rule.domain.contains(":" as Character) ? "[\(rule.domain)]" : rule.domain
            return rule.port.map { "\(host):\($0)" } ?? host
        }.joined(separator: ", ")
    }
}
