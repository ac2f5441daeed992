import AsyncHTTPClient
package import BrokerConfig
import BrokerPOSIX
import FoundationEssentials
package import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// HTTP to Maskinporten and Altinn: one client per trust and proxy setting, strict timeouts, no
/// redirects, bounded bodies. Every outcome becomes a token or a classified `TokenError`; a call
/// through a proxy says which hop failed.
package final class UpstreamClient: Sendable {
    /// What a client is made for: environments that share these share a client.
    package struct Setup: Sendable, Hashable {
        /// Extra PEM trust anchors.
        package var caFile: String?
        /// How calls leave the host.
        package var proxy: ProxySettings

        package init(caFile: String? = nil, proxy: ProxySettings = .direct) {
            self.caFile = caFile
            self.proxy = proxy
        }
    }

    /// Timeouts for one upstream request.
    package struct Timeouts: Sendable {
        /// Connecting (TCP and TLS).
        package var connect: Duration = .seconds(5)
        /// The whole request, from start to the last byte of the answer.
        package var total: Duration = .seconds(15)

        /// Timeouts with the given values.
        package init(connect: Duration = .seconds(5), total: Duration = .seconds(15)) {
            self.connect = connect
            self.total = total
        }
    }

    /// Calls that go directly.
    private let client: HTTPClient
    /// Calls that go through the proxy, when there is one.
    private let proxied: HTTPClient?
    /// The gateway's calls: connections of their own, on the callers' event loops.
    let forwarder: ForwardingClient
    let proxy: ProxySettings
    private let timeouts: Timeouts
    let logger: Logger
    /// Whole fetches (grant, token, exchange) under way at once through this client: as many
    /// as the connection pool keeps per host, so that no request's timeout runs while it queues.
    package let slots = FetchSlots(UpstreamClient.connectionsPerHost)

    /// Connections kept per upstream host (the HTTP library's default).
    package static let connectionsPerHost = 8

    /// The largest answer read; Maskinporten's and Altinn's are a few KiB.
    static let maximumBody = 256 * 1024

    /// A client trusting the system's roots plus, if given, the PEM certificates in `caFile`,
    /// calling through `proxy` where it says so.
    package init(caFile: String? = nil, proxy: ProxySettings = .direct, timeouts: Timeouts = Timeouts(), logger: Logger) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            tls.additionalTrustRoots = [.file(caFile)]
            _ = try NIOSSLCertificate.fromPEMFile(caFile)
        }
        func configuration(through server: ProxySettings.Server?, read: Duration = timeouts.total) -> HTTPClient.Configuration {
            HTTPClient.Configuration(
                tlsConfiguration: tls,
                redirectConfiguration: .disallow,
                timeout: .init(connect: TimeAmount(timeouts.connect), read: TimeAmount(read)),
                proxy: server.map { server in
                    .server(
                        host: server.host, port: server.port,
                        authorization: server.username.map { .basic(username: $0, password: server.password ?? "") })
                },
                decompression: .disabled
            )
        }
        // The HTTP library's own logs stay at info or above, whatever the daemon's level: its
        // trace output describes requests, and requests carry tokens.
        var quiet = logger
        quiet.logLevel = max(logger.logLevel, .info)
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration(through: nil), backgroundActivityLogger: quiet)
        proxied = proxy.server.map {
            HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration(through: $0), backgroundActivityLogger: quiet)
        }
        forwarder = ForwardingClient(tls: tls, proxy: proxy, connectTimeout: timeouts.connect, idleRead: Self.forwardingIdleRead)
        self.proxy = proxy
        self.timeouts = timeouts
        self.logger = quiet
    }

    /// How long a forwarded answer may pause between two reads before the call is given up.
    static let forwardingIdleRead: Duration = .seconds(300)

    /// A client for `setup`.
    package convenience init(_ setup: Setup, timeouts: Timeouts = Timeouts(), logger: Logger) throws {
        try self.init(caFile: setup.caFile, proxy: setup.proxy, timeouts: timeouts, logger: logger)
    }

    /// Closes every connection.
    package func shutdown() async throws {
        try await client.shutdown()
        try await proxied?.shutdown()
        await forwarder.shutdown()
    }

    // MARK: - Maskinporten

    /// Sends a JWT grant to `tokenEndpoint` and reads the access token.
    package func requestToken(grant: String, tokenEndpoint: String) async throws(TokenError) -> MaskinportenToken {
        var request = HTTPClientRequest(url: tokenEndpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        let body = "grant_type=" + Self.formEncode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + Self.formEncode(grant)
        request.body = .bytes(ByteBuffer(string: body))
        let (status, headers, answer) = try await send(request, endpoint: .maskinporten)
        return try Self.counted(.maskinporten, UpstreamAnswers.maskinporten(status: status, headers: headers, body: answer)).get()
    }

    // MARK: - Altinn

    /// Exchanges a Maskinporten token for an Altinn token at `platform`.
    package func exchange(maskinportenToken: String, platform: String, testOrganisation: Bool) async throws(TokenError) -> AltinnToken {
        try await exchange(token: maskinportenToken, from: "maskinporten", platform: platform, testOrganisation: testOrganisation)
    }

    /// Exchanges a person's ID-porten access token for an Altinn token at `platform`.
    package func exchange(idPortenToken: String, platform: String) async throws(TokenError) -> AltinnToken {
        try await exchange(token: idPortenToken, from: "id-porten", platform: platform, testOrganisation: false)
    }

    private func exchange(token: String, from provider: String, platform: String, testOrganisation: Bool) async throws(TokenError) -> AltinnToken {
        var url = platform + "/authentication/api/v1/exchange/" + provider
        if testOrganisation { url += "?test=true" }
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Authorization", value: "Bearer " + token)
        request.headers.add(name: "Accept", value: "text/plain, application/json")
        let (status, headers, answer) = try await send(request, endpoint: .altinn)
        return try Self.counted(.altinn, UpstreamAnswers.altinn(status: status, headers: headers, body: answer)).get()
    }

    // MARK: - Transport

    /// Counts an answer by endpoint and outcome (ok, rejected, unavailable, malformed).
    static func counted<T>(_ endpoint: UpstreamEndpoint, _ result: Result<T, TokenError>) -> Result<T, TokenError> {
        let outcome: String =
            switch result {
            case .success: "ok"
            case .failure(let error): error.kind.rawValue
            }
        Counter(label: MetricName.upstreamCalls, dimensions: [("endpoint", endpoint.rawValue), ("outcome", outcome)]).increment()
        return result
    }

    func send(_ request: HTTPClientRequest, endpoint: UpstreamEndpoint) async throws(TokenError) -> (Int, [(String, String)], [UInt8]) {
        let name = endpoint.displayName
        let started = ContinuousClock.now
        defer {
            Timer(label: MetricName.upstreamLatency, dimensions: [("endpoint", endpoint.rawValue)])
                .recordNanoseconds(started.duration(to: .now).nanoseconds)
        }
        let server = proxied == nil ? nil : proxy.proxy(for: request.url)
        do {
            let response = try await (server == nil ? client : proxied!).execute(request, timeout: TimeAmount(timeouts.total), logger: logger)
            let body = try await response.body.collect(upTo: Self.maximumBody)
            let headers = response.headers.map { ($0.name, $0.value) }
            checkClock(response.headers, endpoint: endpoint)
            return (Int(response.status.code), headers, Array(body.readableBytesView))
        } catch let error as NIOTooManyBytesError {
            _ = error
            throw Self.counted(endpoint, TokenError(.malformed, endpoint: endpoint, "\(name)'s answer is larger than \(Self.maximumBody / 1024) KiB"))
        } catch let error as HTTPClientError where error == .cancelled || error == .alreadyShutdown {
            // The client is shut down when the daemon stops, cancelling what is in flight.
            var stopped = TokenError(.unavailable, endpoint: endpoint, "the request to \(name) was stopped: the daemon is stopping")
            stopped.stopped = true
            throw stopped
        } catch {
            if let server, let reason = await proxyFailure(error, through: server, url: request.url) {
                throw Self.counted(endpoint, TokenError(.unavailable, endpoint: endpoint, "\(name) through the proxy \(server): \(reason)"))
            }
            let through = server.map { " (through the proxy \($0))" } ?? ""
            if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
                throw Self.counted(endpoint, TokenError(.unavailable, endpoint: endpoint, "\(name) did not answer in time\(through) (\(error))"))
            }
            throw Self.counted(endpoint, TokenError(.unavailable, endpoint: endpoint, "\(name) could not be reached\(through): \(Self.describe(error))"))
        }
    }

    /// Which hop of a call through `server` failed, if it was the proxy's: the proxy could not
    /// be reached, refused the tunnel (asked again for its status, `ProxyProbe`), or could not
    /// reach the target. Nil: the tunnel stood, and the failure was the upstream's.
    func proxyFailure(_ error: any Error, through server: ProxySettings.Server, url: String) async -> String? {
        let components = URLComponents(string: url)
        let host = components?.host ?? "?"
        let port = components?.port ?? 443
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        if let error = error as? HTTPClientError {
            if error == .proxyAuthenticationRequired {
                return ProxyProbe.Answer(status: 407, reason: "Proxy Authentication Required").refusal(by: server, of: target)
            }
            if error == .httpProxyHandshakeTimeout {
                return "the proxy did not answer the CONNECT to \(target) in time"
            }
            if error == .invalidProxyResponse {
                switch await ProxyProbe.ask(server, host: host, port: port, timeout: timeouts.connect) {
                case .success(let answer): return answer.refusal(by: server, of: target)
                case .failure(let failure): return "the proxy refused the CONNECT to \(target) (asked again for its status: \(failure.reason))"
                }
            }
            if error == .connectTimeout {
                return "the proxy could not be reached in time (connecting to \(server.host):\(server.port))"
            }
        }
        var connecting = error is NIOConnectionError
        if case ChannelError.connectTimeout = error { connecting = true }
        if let error = error as? IOError, [ECONNREFUSED, EHOSTUNREACH, ENETUNREACH].contains(error.errnoCode) { connecting = true }
        if connecting {
            return "the proxy could not be reached: \(Self.describe(error))"
        }
        return nil
    }

    /// Maskinporten refuses grants whose `iat` is more than 10 s off its clock: warn at 5 s.
    private func checkClock(_ headers: HTTPHeaders, endpoint: UpstreamEndpoint) {
        guard let value = headers.first(name: "Date"), let remote = UpstreamAnswers.httpDate(value) else { return }
        let skew = Date().timeIntervalSince(remote)
        if abs(skew) > 5 {
            logger.warning(
                "this host's clock differs from the upstream's",
                metadata: [
                    "endpoint": "\(endpoint.rawValue)", "skew_seconds": "\(Int(skew))",
                    "hint": "Maskinporten refuses grants whose iat is more than 10 s off; check NTP (timedatectl)",
                ])
        }
    }

    /// Counts a transport failure.
    static func counted(_ endpoint: UpstreamEndpoint, _ error: TokenError) -> TokenError {
        _ = counted(endpoint, Result<Void, TokenError>.failure(error))
        return error
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        if let error = error as? IOError { return "\(error)" }
        if let error = error as? NIOSSLError { return "TLS: \(error)" }
        return String(describing: error)
    }

    /// `application/x-www-form-urlencoded` for one value.
    static func formEncode(_ value: String) -> String {
        PercentEncoding.encode(value, keeping: "-._*")
    }
}

extension Duration {
    /// Whole nanoseconds.
    var nanoseconds: Int64 {
        components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

extension MaskinportenEnvironment {
    /// The upstream client this environment is reached with.
    package var upstreamSetup: UpstreamClient.Setup {
        UpstreamClient.Setup(caFile: caFile, proxy: proxy)
    }
}
