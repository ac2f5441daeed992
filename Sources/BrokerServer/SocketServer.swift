package import Logging
import NIOConcurrencyHelpers
package import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
    import Glibc
#endif

/// The HTTP/1.1 server on the daemon's Unix socket: bound by the daemon (mode and group set
/// before `listen`) or handed in by systemd, with peer credentials on every connection.
package final class SocketServer: Service, Sendable {
    /// The listening socket: made by `UnixListener.make` before anything else starts (so a
    /// second daemon fails before fetching a token), or passed in by systemd.
    package struct Listener: Sendable {
        /// The listening descriptor; the server owns it from now on.
        package var descriptor: Int32
        /// The socket file to remove on exit: set when the daemon created it, nil when systemd
        /// passed it in (systemd owns the file).
        package var removeOnExit: String?

        /// A listener on `descriptor`.
        package init(descriptor: Int32, removeOnExit: String?) {
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
    /// The accepting threads, while they run.
    private let fast = NIOLockedValueBox<FastServer?>(nil)

    /// A server for `router` on `listener`; `onListening` runs once connections can be accepted.
    package init(
        listener: Listener, router: Router, limits: ServerLimits = ServerLimits(), metrics: ServerMetrics, logger: Logger,
        onListening: @escaping @Sendable () -> Void = {}
    ) {
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
    /// `FastServer` accepts, on one thread per core, and answers cached-token requests itself;
    /// every other connection it hands to NIO (`adopt`), on the event loop group's loops.
    package func run() async throws {
        let descriptor = listener.descriptor
        let group = MultiThreadedEventLoopGroup.singleton
        let router = self.router
        let limits = self.limits
        let logger = self.logger
        let registry = ConnectionRegistry(limit: limits.maxConnections, metrics: metrics)
        let fast: FastServer
        do {
            fast = try FastServer(listener: descriptor, threads: System.coreCount, router: router, limits: limits, registry: registry, logger: logger) {
                handOver in
                handOver.adopt(group: group, router: router, limits: limits, registry: registry, logger: logger)
            }
        } catch {
            close(descriptor)
            throw error
        }
        do {
            try fast.start()
        } catch {
            // The threads that did start end here; no connection has been accepted.
            await fast.stop()
            close(descriptor)
            throw error
        }
        self.fast.withLockedValue { $0 = fast }
        onListening()
        try? await gracefulShutdown()
        await fast.stop()
        self.fast.withLockedValue { $0 = nil }
        close(descriptor)
        // What NIO serves: each connection answers what it is answering, then closes.
        for channel in registry.channels {
            channel.eventLoop.execute { channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        }
        let finished = await registry.channelsClosed(within: .seconds(5))
        if let path = listener.removeOnExit {
            unlink(path)
        }
        logger.info("socket closed", metadata: ["in_flight_finished": "\(finished)"])
    }

    /// Returns once every accepting thread has come round its loop (for the watchdog): a thread
    /// stuck in a request would never answer.
    package func respond() async {
        await fast.withLockedValue { $0 }?.respond()
    }

    /// The handlers of one accepted connection from `peer`, in order: the raw-byte guard, NIO's
    /// HTTP/1 codec with the head limits and pipelining, the answer to what the codec refuses,
    /// and the broker's request handler (which also keeps the connection's deadlines).
    /// Must run on the channel's event loop. (Also used by the HTTP fuzz target, on a testing
    /// channel.)
    package static func configureConnection(_ channel: any Channel, peer: PeerCredentials, router: Router, limits: ServerLimits, logger: Logger) throws {
        let byteGuard = RequestByteGuard(limit: limits.headerBytes + limits.bodyBytes + 16 * 1024)
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderListSize = limits.headerBytes
        decoderLimits.maxHeaderFieldSize = limits.headerBytes
        decoderLimits.maxHeaderFieldCount = 100
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(byteGuard)
        try sync.configureHTTPServerPipeline(
            // Errors are answered by the broker's own handler, with its error body.
            withPipeliningAssistance: true, withErrorHandling: false,
            // Every response header is the broker's own (no caller text): validating them again
            // on the way out would cost a handler crossing per response part.
            withOutboundHeaderValidation: false,
            withEncoderConfiguration: HTTPResponseEncoder.Configuration(),
            withDecoderLimitConfiguration: decoderLimits
        )
        try sync.addHandler(ProtocolErrorAnswer())
        try sync.addHandler(BrokerHTTPHandler(router: router, peer: peer, limits: limits, byteGuard: byteGuard, logger: logger))
    }
}
