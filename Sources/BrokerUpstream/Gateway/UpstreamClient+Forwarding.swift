import AsyncHTTPClient
import BrokerConfig
import NIOCore
import NIOHTTP1

extension UpstreamClient {
    /// Sends `request` to Altinn and returns its answer once the status and headers have come,
    /// with the body left to stream. Whatever Altinn answers is an answer (its errors are the
    /// caller's to read); only a call that got none is a failure.
    package func forward(_ request: ForwardedRequest) async throws(ForwardingFailure) -> ForwardedAnswer {
        var call = HTTPClientRequest(url: request.url)
        call.method = request.method
        call.headers = request.headers
        if request.body.readableBytes > 0 || ![.GET, .HEAD, .DELETE, .OPTIONS].contains(request.method) {
            call.body = .bytes(request.body)
        }
        guard let clients = forwarders else { throw .stopped }
        let server = clients.proxied == nil ? nil : proxy.proxy(for: request.url)
        do {
            let response = try await (server == nil ? clients.direct : clients.proxied!).execute(call, timeout: TimeAmount(request.timeout), logger: logger)
            return ForwardedAnswer(status: Int(response.status.code), headers: response.headers, body: ForwardedAnswer.Body(base: response.body))
        } catch let error as HTTPClientError where error == .cancelled || error == .alreadyShutdown {
            throw .stopped
        } catch {
            if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .readTimeout {
                throw .timedOut("Altinn did not answer within \(request.timeout.components.seconds) s\(server.map { " (through the proxy \($0))" } ?? "")")
            }
            if let server, let reason = await proxyFailure(error, through: server, url: request.url) {
                throw .unreachable("Altinn through the proxy \(server): \(reason)")
            }
            if let error = error as? HTTPClientError, error == .connectTimeout {
                throw .unreachable("Altinn could not be reached in time\(server.map { " (through the proxy \($0))" } ?? "")")
            }
            throw .unreachable("Altinn could not be reached\(server.map { " (through the proxy \($0))" } ?? ""): \(Self.describe(error))")
        }
    }
}
