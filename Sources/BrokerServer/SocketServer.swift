#if canImport(Glibc)
import Glibc
#endif
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
public import ServiceLifecycle

/// The HTTP/1.1 server on the daemon's Unix socket: bound by the daemon (mode and group set
/// before `listen`) or handed in by systemd, with peer credentials on every connection.
public final class SocketServer: Service, Sendable {
    /// The listening socket: made by `UnixListener.make` before anything else starts (so a
    /// second daemon fails before fetching a token), or passed in by systemd.
    public struct Listener: Sendable {
        /// The listening descriptor; the server owns it from now on.
        public var descriptor: Int32
        /// The socket file to remove on exit: set when the daemon created it, nil when systemd
        /// passed it in (systemd owns the file).
        public var removeOnExit: String?

        /// A listener on `descriptor`.
        public init(descriptor: Int32, removeOnExit: String?) {
            self.descriptor = descriptor
            self.removeOnExit = removeOnExit
        }
    }

    private let listener: Listener
    private let router: Router
    private let limits: ServerLimits
    private let metrics: ServerMetrics
    private let logger: Logger
    private let onListening: @Sendable () -> Void

    /// A server for `router` on `listener`; `onListening` runs once connections can be accepted.
    public init(listener: Listener, router: Router, limits: ServerLimits = ServerLimits(), metrics: ServerMetrics, logger: Logger, onListening: @escaping @Sendable () -> Void = {}) {
        self.listener = listener
        self.router = router
        self.limits = limits
        self.metrics = metrics
        self.logger = logger
        self.onListening = onListening
    }

    /// Serves until graceful shutdown, then stops accepting, lets requests under way finish
    /// (for up to 5 s) and removes the socket file it created.
    ///
    /// One channel accepts; the connections are spread over every event loop. (Measured: a
    /// connection kept on the accepting loop makes one-request connections 30 % faster but
    /// keep-alive traffic 20 % slower; NIO cannot share one listening socket between loops.)
    public func run() async throws {
        let descriptor = listener.descriptor
        let group = MultiThreadedEventLoopGroup.singleton
        let quiesce = ServerQuiescingHelper(group: group)
        let router = self.router
        let limits = self.limits
        let logger = self.logger
        let registry = ConnectionRegistry(limit: limits.maxConnections, metrics: metrics)
        let channel: any Channel
        do {
            channel = try await ServerBootstrap(group: group)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(quiesce.makeServerChannelHandler(channel: channel))
                        try channel.pipeline.syncOperations.addHandler(ConnectionLimiter(registry: registry))
                    }
                }
                .childChannelOption(ChannelOptions.maxMessagesPerRead, value: 4)
                .childChannelInitializer { channel in
                    Self.peerCredentials(of: channel).flatMapThrowing { peer in
                        try Self.configureConnection(channel, peer: peer, router: router, limits: limits, logger: logger)
                    }
                }
                .withBoundSocket(descriptor)
                .get()
        } catch {
            close(descriptor)
            throw error
        }
        onListening()
        try? await gracefulShutdown()
        let done = channel.eventLoop.makePromise(of: Void.self)
        quiesce.initiateShutdown(promise: done)
        let finished = NIOLockedValueBox(false)
        done.futureResult.whenComplete { _ in finished.withLockedValue { $0 = true } }
        for _ in 0..<250 where !finished.withLockedValue({ $0 }) {
            try? await Task.sleep(for: .milliseconds(20))
        }
        if let path = listener.removeOnExit {
            unlink(path)
        }
        logger.info("socket closed", metadata: ["in_flight_finished": "\(finished.withLockedValue { $0 })"])
    }

    /// The handlers of one accepted connection from `peer`, in order: the raw-byte guard, NIO's
    /// HTTP/1 codec with the head limits, and the broker's request handler (which also keeps
    /// the connection's deadlines).
    /// Must run on the channel's event loop. (Also used by the HTTP fuzz target, on a testing
    /// channel.)
    @_spi(Fuzzing)
    public static func configureConnection(_ channel: any Channel, peer: PeerCredentials, router: Router, limits: ServerLimits, logger: Logger) throws {
        let byteGuard = RequestByteGuard(limit: limits.headerBytes + limits.bodyBytes + 16 * 1024)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderListSize = limits.headerBytes
        decoderLimits.maxHeaderFieldSize = limits.headerBytes
        decoderLimits.maxHeaderFieldCount = 100
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(byteGuard)
        try sync.configureHTTPServerPipeline(
            withPipeliningAssistance: true, withErrorHandling: true,
            // Every response header is the broker's own (no caller text): validating them again
            // on the way out would cost a handler crossing per response part.
            withOutboundHeaderValidation: false,
            withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
            withDecoderLimitConfiguration: decoderLimits
        )
        try sync.addHandler(BrokerHTTPHandler(router: router, peer: peer, limits: limits, byteGuard: byteGuard, logger: logger))
    }

    /// `SO_PEERCRED` of an accepted connection.
    static func peerCredentials(of channel: any Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
        }
        let future: EventLoopFuture<RawPeerCredentials> = provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return future.map { PeerCredentials(pid: $0.pid, uid: $0.uid, gid: $0.gid) }
    }
}

/// The layout of Linux's `struct ucred`, which Swift's Glibc module does not export (it needs
/// `_GNU_SOURCE`).
struct RawPeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}
