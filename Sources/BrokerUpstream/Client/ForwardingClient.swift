import BrokerConfig
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Every upstream call's HTTP/1.1 client, the token calls' and the gateway's: kept-alive
/// connections per event loop, on the caller's connection's loop for the gateway, so that a
/// forwarded call is read, sent, answered and written back on one thread with no task, lock or
/// wakeup of its own. (The general HTTP library cost the gateway four
/// thread wakeups and most of its time per call: measured at a fifth of nginx's rate.) Through a
/// proxy, each connection is a CONNECT tunnel; to an `https` URL, TLS trusting the system's
/// roots and the environment's `ca_file`.
final class ForwardingClient: Sendable {
    /// Why a call got no answer.
    enum Failure: Error {
        /// Connecting to `host:port` failed (DNS, refused, unreachable, timed out).
        case connect(host: String, port: Int, any Error)
        /// The proxy could not be reached.
        case proxyUnreachable(any Error)
        /// The proxy answered the CONNECT to `target` (`host:port`) with a status other than 2xx.
        case proxyRefused(ProxyConnect.Answer, target: String)
        /// The proxy did not answer the CONNECT in time, or not with HTTP.
        case proxyNoAnswer(String)
        /// The connection failed or closed before the answer's head.
        case exchange(ForwardingConnection.Failure)
        /// A URL that is not `http(s)://host[:port]/...`.
        case badURL
        case shutDown
    }

    private let tls: TLSConfiguration
    /// Made at the first `https` call: loading the trust roots takes time and memory a daemon
    /// without a gateway does not spend.
    private let tlsContext = NIOLockedValueBox<NIOSSLContext?>(nil)
    let proxy: ProxySettings
    private let connectTimeout: TimeAmount
    private let idleRead: TimeAmount
    private let pools = NIOLockedValueBox<(pools: [ObjectIdentifier: ForwardingPool], shutDown: Bool)>(([:], false))

    init(tls: TLSConfiguration, proxy: ProxySettings, connectTimeout: Duration, idleRead: Duration) {
        self.tls = tls
        self.proxy = proxy
        self.connectTimeout = TimeAmount(connectTimeout)
        self.idleRead = TimeAmount(idleRead)
    }

    /// Sends `request` and returns once the answer's head is read. A kept-alive connection that
    /// turns out closed (Altinn's keep-alive limit met the call on the way) is replaced by a new
    /// one once, for a method that may be sent twice.
    func send(_ request: ForwardedRequest) async throws(Failure) -> ForwardedAnswer {
        let loop = MultiThreadedEventLoopGroup.currentEventLoop ?? MultiThreadedEventLoopGroup.singleton.next()
        guard let pool = pool(for: loop) else { throw .shutDown }
        let promise = loop.makePromise(of: ForwardedAnswer.self)
        if loop.inEventLoop {
            start(request, pool: pool, promise: promise)
        } else {
            loop.execute { self.start(request, pool: pool, promise: promise) }
        }
        do {
            return try await promise.futureResult.get()
        } catch let failure as Failure {
            throw failure
        } catch let failure as ForwardingConnection.Failure {
            throw .exchange(failure)
        } catch {
            throw .exchange(.transport(error))
        }
    }

    private func pool(for loop: any EventLoop) -> ForwardingPool? {
        pools.withLockedValue { state in
            guard !state.shutDown else { return nil }
            if let pool = state.pools[ObjectIdentifier(loop)] { return pool }
            let pool = ForwardingPool(loop: loop)
            state.pools[ObjectIdentifier(loop)] = pool
            return pool
        }
    }

    /// On `pool`'s loop: the call on a kept connection, or a new one.
    private func start(_ request: ForwardedRequest, pool: ForwardingPool, promise: EventLoopPromise<ForwardedAnswer>) {
        guard !pool.isShutDown else { return promise.fail(Failure.shutDown) }
        guard let (target, uri) = ForwardingEndpoint.parse(request.url, proxied: false) else { return promise.fail(Failure.badURL) }
        var endpoint = target
        endpoint.proxied = proxy.proxy(forHost: endpoint.host, port: endpoint.port) != nil
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: uri, headers: request.headers)
        head.headers.replaceOrAdd(name: "Host", value: endpoint.authority)
        if request.body.readableBytes > 0 || [.POST, .PUT, .PATCH].contains(request.method) {
            head.headers.replaceOrAdd(name: "Content-Length", value: String(request.body.readableBytes))
        }
        let timeout = TimeAmount(request.timeout)
        guard let kept = pool.take(endpoint) else {
            return sendOnNewConnection(head, body: request.body, timeout: timeout, to: endpoint, pool: pool, promise: promise)
        }
        let first = pool.loop.makePromise(of: ForwardedAnswer.self)
        kept.send(head, body: request.body, timeout: timeout, promise: first)
        let retries = [.GET, .HEAD, .PUT, .DELETE, .OPTIONS].contains(request.method)
        first.futureResult.whenComplete { [head, endpoint] result in
            if retries, case .failure(let error) = result, Self.closedUnderway(error) {
                self.sendOnNewConnection(head, body: request.body, timeout: timeout, to: endpoint, pool: pool, promise: promise)
            } else {
                promise.completeWith(result)
            }
        }
    }

    private func sendOnNewConnection(
        _ head: HTTPRequestHead, body: ByteBuffer, timeout: TimeAmount, to endpoint: ForwardingEndpoint, pool: ForwardingPool,
        promise: EventLoopPromise<ForwardedAnswer>
    ) {
        connect(endpoint, pool: pool).whenComplete { connected in
            switch connected {
            case .success(let connection): connection.send(head, body: body, timeout: timeout, promise: promise)
            case .failure(let error): promise.fail(error)
            }
        }
    }

    /// A kept connection that the server closed as the call went out: nothing of an answer came.
    private static func closedUnderway(_ error: any Error) -> Bool {
        switch error as? ForwardingConnection.Failure {
        case .closed: true
        case .transport(let error): error is IOError
        default: false
        }
    }

    /// A new connection to `endpoint` on `pool`'s loop: TCP (to the proxy, and a tunnel through
    /// it), TLS, HTTP/1.1.
    private func connect(_ endpoint: ForwardingEndpoint, pool: ForwardingPool) -> EventLoopFuture<ForwardingConnection> {
        let loop = pool.loop
        let server = endpoint.proxied ? proxy.server : nil
        let bootstrap = ClientBootstrap(group: loop).connectTimeout(connectTimeout)
        let connected = bootstrap.connect(host: server?.host ?? endpoint.host, port: server?.port ?? endpoint.port).flatMapErrorThrowing { error in
            throw server == nil ? Failure.connect(host: endpoint.host, port: endpoint.port, error) : Failure.proxyUnreachable(error)
        }
        let tunnelled: EventLoopFuture<any Channel>
        if let server {
            tunnelled = connected.flatMap { channel in
                ProxyTunnel.open(on: channel, through: server, to: endpoint, timeout: self.connectTimeout).map { channel }
            }
        } else {
            tunnelled = connected
        }
        return tunnelled.flatMapThrowing { channel in
            let operations = channel.pipeline.syncOperations
            if endpoint.secure {
                let context = try self.context()
                let name = (try? SocketAddress(ipAddress: endpoint.host, port: 0)) == nil ? endpoint.host : nil
                try operations.addHandler(NIOSSLClientHandler(context: context, serverHostname: name))
            }
            // Every header sent was read by the socket's HTTP parser, which refuses what the
            // validation would, or is the broker's own: validating again costs each call.
            try operations.addHTTPClientHandlers(enableOutboundHeaderValidation: false)
            let connection = ForwardingConnection(endpoint: endpoint, pool: pool, idleRead: self.idleRead)
            try operations.addHandler(connection)
            pool.opened(connection)
            return connection
        }
    }

    private func context() throws -> NIOSSLContext {
        try tlsContext.withLockedValue { made in
            if let made { return made }
            let context = try NIOSSLContext(configuration: tls)
            made = context
            return context
        }
    }

    /// Whether `shutdown()` has begun.
    var isShutDown: Bool { pools.withLockedValue { $0.shutDown } }

    /// Closes every connection; a call after fails as `shutDown`.
    func shutdown() async {
        let pools = pools.withLockedValue { state in
            state.shutDown = true
            return Array(state.pools.values)
        }
        for pool in pools {
            try? await pool.loop.submit { pool.close() }.get()
        }
    }
}
