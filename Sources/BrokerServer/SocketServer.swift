#if canImport(Glibc)
import Glibc
#endif
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
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
    /// The accepting threads, while they run.
    private let fast = NIOLockedValueBox<FastServer?>(nil)

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
    /// `FastServer` accepts, on one thread per core, and answers cached-token requests itself;
    /// every other connection it hands to NIO (`adopt`), on the event loop group's loops.
    public func run() async throws {
        let descriptor = listener.descriptor
        let group = MultiThreadedEventLoopGroup.singleton
        let router = self.router
        let limits = self.limits
        let logger = self.logger
        let registry = ConnectionRegistry(limit: limits.maxConnections, metrics: metrics)
        let fast: FastServer
        do {
            fast = try FastServer(listener: descriptor, threads: System.coreCount, router: router, limits: limits, registry: registry, logger: logger) { handOver in
                Self.adopt(handOver, group: group, router: router, limits: limits, registry: registry, logger: logger)
            }
        } catch {
            close(descriptor)
            throw error
        }
        fast.start()
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
        var finished = registry.channels.isEmpty
        for _ in 0..<250 where !finished {
            try? await Task.sleep(for: .milliseconds(20))
            finished = registry.channels.isEmpty
        }
        if let path = listener.removeOnExit {
            unlink(path)
        }
        logger.info("socket closed", metadata: ["in_flight_finished": "\(finished)"])
    }

    /// Returns once every accepting thread has come round its loop (for the watchdog): a thread
    /// stuck in a request would never answer.
    public func respond() async {
        await fast.withLockedValue { $0 }?.respond()
    }

    /// Serves a connection the fast path handed over: the same pipeline as every NIO
    /// connection, fed first with what the fast path had read and not answered.
    static func adopt(_ handOver: FastServer.HandOver, group: MultiThreadedEventLoopGroup, router: Router, limits: ServerLimits, registry: ConnectionRegistry, logger: Logger) {
        ClientBootstrap(group: group)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 4)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try configureConnection(channel, peer: handOver.peer, router: router, limits: limits, logger: logger)
                    try channel.pipeline.syncOperations.addHandler(Replay(input: handOver.input, output: handOver.output, closeAfterOutput: handOver.closeAfterOutput), position: .first)
                }
            }
            .withConnectedSocket(handOver.descriptor)
            .whenComplete { result in
                switch result {
                case .success(let channel):
                    registry.moved(handOver.id, to: channel)
                case .failure(let error):
                    logger.debug("a connection could not be handed to NIO", metadata: ["error": "\(error)", "pid": "\(handOver.peer.pid)"])
                    registry.closed(handOver.id)
                }
            }
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
}

/// Replays, when a handed-over connection becomes active, what the fast path left: answers not
/// yet written go out first, then the unanswered input goes up the pipeline as if just read.
final class Replay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let input: [UInt8]
    private let output: [UInt8]
    private let closeAfterOutput: Bool

    init(input: [UInt8], output: [UInt8], closeAfterOutput: Bool) {
        self.input = input
        self.output = output
        self.closeAfterOutput = closeAfterOutput
    }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        if closeAfterOutput {
            let channel = context.channel
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: output))).whenComplete { _ in channel.close(promise: nil) }
            return
        }
        if !output.isEmpty {
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: output)), promise: nil)
        }
        if !input.isEmpty {
            context.fireChannelRead(NIOAny(ByteBuffer(bytes: input)))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// The layout of Linux's `struct ucred`, which Swift's Glibc module does not export (it needs
/// `_GNU_SOURCE`).
struct RawPeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}
