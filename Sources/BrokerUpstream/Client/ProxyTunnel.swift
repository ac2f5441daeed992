import BrokerConfig
import BrokerPOSIX
import NIOCore

/// A tunnel through the proxy for one connection: `CONNECT host:port` (with the proxy URL's
/// credentials), the proxy's answer read up to its blank line, and the handler gone once it
/// stands, so TLS and HTTP to Altinn run through it. A refusal keeps the proxy's status, which
/// tells the hops apart: 407 the credentials, 403 the proxy's rules, 502-504 the target.
final class ProxyTunnel: ChannelInboundHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let promise: EventLoopPromise<Void>
    private let target: String
    private var answer = ByteBuffer()
    private var timer: Scheduled<Void>?

    /// The largest CONNECT answer read (a status line and a few headers).
    static let maximumHead = 8 * 1024

    private init(promise: EventLoopPromise<Void>, target: String) {
        self.promise = promise
        self.target = target
    }

    /// Opens the tunnel on `channel`, connected to `server`; fails as `ForwardingClient.Failure`.
    static func open(on channel: any Channel, through server: ProxySettings.Server, to endpoint: ForwardingEndpoint, timeout: TimeAmount) -> EventLoopFuture<
        Void
    > {
        let promise = channel.eventLoop.makePromise(of: Void.self)
        let target = endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)"
        let tunnel = ProxyTunnel(promise: promise, target: target)
        do {
            try channel.pipeline.syncOperations.addHandler(tunnel)
        } catch {
            promise.fail(ForwardingClient.Failure.proxyUnreachable(error))
            return promise.futureResult
        }
        tunnel.timer = channel.eventLoop.scheduleTask(in: timeout) {
            promise.fail(ForwardingClient.Failure.proxyNoAnswer("the proxy did not answer the CONNECT to \(target) in time"))
            channel.close(promise: nil)
        }
        channel.writeAndFlush(ByteBuffer(string: ProxyConnect.request(server, host: endpoint.host, port: endpoint.port)), promise: nil)
        return promise.futureResult.flatMap {
            tunnel.timer?.cancel()
            return channel.pipeline.syncOperations.removeHandler(tunnel)
        }.flatMapError { error in
            tunnel.timer?.cancel()
            return channel.close().flatMapThrowing { throw error }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        answer.writeBuffer(&chunk)
        let bytes = answer.readableBytesView
        guard let end = bytes.firstRange(ofElements: [13, 10, 13, 10]) else {
            if answer.readableBytes > Self.maximumHead {
                promise.fail(ForwardingClient.Failure.proxyNoAnswer("the proxy's answer to the CONNECT is not HTTP"))
            }
            return
        }
        let line = bytes[..<end.lowerBound].prefix { $0 != 13 && $0 != 10 }
        guard let parsed = ProxyConnect.parse(Array(line)) else {
            promise.fail(ForwardingClient.Failure.proxyNoAnswer("the proxy's answer to the CONNECT is not HTTP"))
            return
        }
        if (200...299).contains(parsed.status) {
            promise.succeed()
        } else {
            promise.fail(ForwardingClient.Failure.proxyRefused(parsed, target: target))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ForwardingClient.Failure.proxyNoAnswer("the proxy closed the connection without answering the CONNECT"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(ForwardingClient.Failure.proxyUnreachable(error))
    }
}
