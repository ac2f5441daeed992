import BrokerConfig
import NIOCore
import NIOSSL

extension UpstreamClient {
    /// Sends `request` to Altinn and returns its answer once the status and headers have come,
    /// with the body left to stream. Whatever Altinn answers is an answer (its errors are the
    /// caller's to read); only a call that got none is a failure, in words that name the hop.
    package func forward(_ request: ForwardedRequest) async throws(ForwardingFailure) -> ForwardedAnswer {
        do {
            return try await forwarder.send(request)
        } catch {
            // The daemon stopping closes the connections under the calls on them.
            throw forwarder.isShutDown ? .stopped : Self.failure(error, timeout: request.timeout, proxy: forwarder.proxy)
        }
    }

    static func failure(_ failure: ForwardingClient.Failure, timeout: Duration, proxy: ProxySettings) -> ForwardingFailure {
        switch failure {
        case .shutDown:
            return .stopped
        case .badURL:
            return .unreachable("the Altinn platform's URL is not an http(s) URL")
        case .connect(let host, let port, let error):
            return .unreachable("Altinn could not be reached (connecting to \(host):\(port)): \(describe(error))")
        case .proxyUnreachable(let error):
            return .unreachable("Altinn through the proxy \(proxy.server.map { "\($0)" } ?? "?"): the proxy could not be reached: \(describe(error))")
        case .proxyRefused(let answer, let target):
            guard let server = proxy.server else { return .unreachable("the proxy refused the tunnel to \(target)") }
            return .unreachable("Altinn through the proxy \(server): \(answer.refusal(by: server, of: target))")
        case .proxyNoAnswer(let reason):
            return .unreachable("Altinn through the proxy \(proxy.server.map { "\($0)" } ?? "?"): \(reason)")
        case .exchange(.timedOut):
            return .timedOut("Altinn did not answer within \(timeout.components.seconds) s")
        case .exchange(.closed), .exchange(.brokenOff):
            return .unreachable("Altinn closed the connection without answering")
        case .exchange(.transport(let error)):
            return .unreachable("Altinn could not be reached: \(describe(error))")
        }
    }
}
