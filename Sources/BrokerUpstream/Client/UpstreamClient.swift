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
///
/// Token calls and the gateway's calls go out on one HTTP/1.1 client of our own on NIO
/// (`ForwardingClient`: kept-alive connections per event loop, CONNECT tunnels through the proxy,
/// TLS with `ca_file`). A general HTTP library would bring HTTP/2, tracing and configuration
/// modules the daemon never uses, a tenth of its executable.
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

    /// Every call's connections, kept per event loop (the gateway's on its callers' loops).
    let forwarder: ForwardingClient
    /// The gateway's calls as the socket's fast path sends them, with the same trust and proxy.
    package let wire: WireClient
    let proxy: ProxySettings
    private let timeouts: Timeouts
    let logger: Logger
    /// Whole fetches (grant, token, exchange) under way at once through this client: a fetch
    /// waits here, before its timeouts start, rather than open a ninth connection to Maskinporten
    /// when a thousand profiles refresh together.
    package let slots = FetchSlots(UpstreamClient.fetchesAtOnce)

    /// Token fetches under way at once per client.
    package static let fetchesAtOnce = 8

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
        forwarder = ForwardingClient(tls: tls, proxy: proxy, connectTimeout: timeouts.connect, idleRead: Self.forwardingIdleRead)
        wire = WireClient(caFile: caFile, proxy: proxy, connectTimeout: timeouts.connect)
        self.proxy = proxy
        self.timeouts = timeouts
        self.logger = logger
    }

    /// How long a forwarded answer may pause between two reads before the call is given up.
    package static let forwardingIdleRead: Duration = .seconds(300)
    /// How long a kept connection to Altinn may sit idle and still be used.
    package static let forwardingIdleReuse: Duration = .seconds(30)

    /// A client for `setup`.
    package convenience init(_ setup: Setup, timeouts: Timeouts = Timeouts(), logger: Logger) throws {
        try self.init(caFile: setup.caFile, proxy: setup.proxy, timeouts: timeouts, logger: logger)
    }

    /// Closes every connection.
    package func shutdown() async throws {
        await forwarder.shutdown()
    }

    // MARK: - Maskinporten

    /// Sends a JWT grant to `tokenEndpoint` and reads the access token.
    package func requestToken(grant: String, tokenEndpoint: String) async throws(TokenError) -> MaskinportenToken {
        let body = "grant_type=" + Self.formEncode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + Self.formEncode(grant)
        let (status, headers, answer) = try await send(
            .POST, tokenEndpoint, headers: ["Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"],
            body: ByteBuffer(string: body), endpoint: .maskinporten)
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
        let (status, headers, answer) = try await send(
            .GET, url, headers: ["Authorization": "Bearer " + token, "Accept": "text/plain, application/json"], endpoint: .altinn)
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

    /// One whole call: the answer's status, headers and body (at most `maximumBody`), within the
    /// total timeout; any other outcome is a `TokenError` naming the hop that failed.
    func send(
        _ method: HTTPMethod, _ url: String, headers: HTTPHeaders, body: ByteBuffer = ByteBuffer(), endpoint: UpstreamEndpoint
    ) async throws(TokenError) -> (Int, [(String, String)], [UInt8]) {
        let started = ContinuousClock.now
        defer {
            Timer(label: MetricName.upstreamLatency, dimensions: [("endpoint", endpoint.rawValue)])
                .recordNanoseconds(started.duration(to: .now).nanoseconds)
        }
        let request = ForwardedRequest(method: method, url: url, headers: headers, body: body, timeout: timeouts.total)
        let forwarder = self.forwarder
        let outcome = await withTimeLimit(timeouts.total) { () async -> Result<(Int, HTTPHeaders, [UInt8]), CallFailure> in
            let answer: ForwardedAnswer
            do throws(ForwardingClient.Failure) {
                answer = try await forwarder.send(request)
            } catch {
                return .failure(.call(error))
            }
            var collected: [UInt8] = []
            do {
                for try await chunk in answer.body {
                    guard collected.count + chunk.readableBytes <= Self.maximumBody else { return .failure(.tooLarge) }
                    collected += chunk.readableBytesView
                }
            } catch {
                return .failure(.call(.exchange(error as? ForwardingConnection.Failure ?? .transport(error))))
            }
            return .success((answer.status, answer.headers, collected))
        }
        switch outcome {
        case .success(let (status, headers, body))?:
            checkClock(headers, endpoint: endpoint)
            return (status, headers.map { ($0.name, $0.value) }, body)
        case .failure(let failure)?:
            throw failed(failure, url: url, endpoint: endpoint)
        case nil:
            throw failed(.call(.exchange(.timedOut)), url: url, endpoint: endpoint)
        }
    }

    /// Why a call got no whole answer.
    enum CallFailure: Error {
        case call(ForwardingClient.Failure)
        case tooLarge
    }

    /// The call's failure in words that name the hop: the upstream, or the proxy on the way.
    private func failed(_ failure: CallFailure, url: String, endpoint: UpstreamEndpoint) -> TokenError {
        let name = endpoint.displayName
        let server = proxy.proxy(for: url)
        let through = server.map { " (through the proxy \($0))" } ?? ""
        func unavailable(_ reason: String) -> TokenError { Self.counted(endpoint, TokenError(.unavailable, endpoint: endpoint, reason)) }
        func proxyHop(_ reason: String) -> TokenError { unavailable("\(name) through the proxy \(server.map { "\($0)" } ?? "?"): \(reason)") }
        // The daemon stopping closes the connections under the calls on them.
        let failure = forwarder.isShutDown ? .call(.shutDown) : failure
        switch failure {
        case .tooLarge:
            return Self.counted(endpoint, TokenError(.malformed, endpoint: endpoint, "\(name)'s answer is larger than \(Self.maximumBody / 1024) KiB"))
        case .call(.shutDown):
            // The client is shut down when the daemon stops, closing what is in flight.
            var stopped = TokenError(.unavailable, endpoint: endpoint, "the request to \(name) was stopped: the daemon is stopping")
            stopped.stopped = true
            return stopped
        case .call(.badURL):
            return unavailable("\(name) could not be reached: its URL is not an http(s) URL")
        case .call(.connect(let host, let port, let error)):
            if Self.timedOut(error) { return unavailable("\(name) did not answer in time (connecting to \(host):\(port))") }
            return unavailable("\(name) could not be reached: \(Self.describe(error))")
        case .call(.proxyUnreachable(let error)):
            guard let server else { return unavailable("\(name) could not be reached: \(Self.describe(error))") }
            if Self.timedOut(error) { return proxyHop("the proxy could not be reached in time (connecting to \(server.host):\(server.port))") }
            return proxyHop("the proxy could not be reached: \(Self.describe(error))")
        case .call(.proxyRefused(let answer, let target)):
            guard let server else { return unavailable("\(name): the proxy refused the tunnel to \(target)") }
            return proxyHop(answer.refusal(by: server, of: target))
        case .call(.proxyNoAnswer(let reason)):
            return proxyHop(reason)
        case .call(.exchange(.timedOut)):
            return unavailable("\(name) did not answer in time\(through)")
        case .call(.exchange(.closed)), .call(.exchange(.brokenOff)):
            return unavailable("\(name) could not be reached\(through): the connection closed before the answer was whole")
        case .call(.exchange(.transport(let error))):
            return unavailable("\(name) could not be reached\(through): \(Self.describe(error))")
        }
    }

    private static func timedOut(_ error: any Error) -> Bool {
        if case ChannelError.connectTimeout = error { return true }
        return false
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
