import BrokerTokens
import Logging
import NIOCore
import NIOPosix

// A connection leaving the fast path: everything NIO needs to serve it from where the fast
// path stopped.

extension FastServer {
    /// A connection leaving the fast path for NIO.
    struct HandOver: Sendable {
        var descriptor: Int32
        var peer: PeerCredentials
        var id: UInt64
        /// Input read but not answered, starting at the first request the fast path did not answer.
        var input: [UInt8]
        /// Answers not yet written (a slow reader), to write before anything else.
        var output: [UInt8]
        /// Close once `output` is written (its last answer said `Connection: close`).
        var closeAfterOutput = false
        /// The token Altinn refused the gateway call in `input` (sent by the fast path): NIO's
        /// route replaces it and sends the call once more.
        var refusedToken: IssuedToken?
    }
}

extension FastServer.HandOver {
    /// Serves this connection on NIO: the same pipeline as every NIO connection
    /// (`SocketServer.configureConnection`), fed first with what the fast path had read and not
    /// answered.
    func adopt(group: MultiThreadedEventLoopGroup, router: Router, limits: ServerLimits, registry: ConnectionRegistry, logger: Logger) {
        let handOver = self
        ClientBootstrap(group: group)
            .channelOption(ChannelOptions.maxMessagesPerRead, value: 4)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try SocketServer.configureConnection(channel, peer: handOver.peer, router: router, limits: limits, logger: logger)
                    try channel.pipeline.syncOperations.addHandler(
                        Replay(
                            input: handOver.input, output: handOver.output, closeAfterOutput: handOver.closeAfterOutput,
                            refusedToken: handOver.refusedToken),
                        position: .first)
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
}

/// Replays, when a handed-over connection becomes active, what the fast path left: answers not
/// yet written go out first, then the unanswered input goes up the pipeline as if just read.
final class Replay: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let input: [UInt8]
    private let output: [UInt8]
    private let closeAfterOutput: Bool

    private let refusedToken: IssuedToken?

    init(input: [UInt8], output: [UInt8], closeAfterOutput: Bool, refusedToken: IssuedToken? = nil) {
        self.input = input
        self.output = output
        self.closeAfterOutput = closeAfterOutput
        self.refusedToken = refusedToken
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
        if let refusedToken {
            context.fireUserInboundEventTriggered(GatewayTokenRefused(token: refusedToken))
        }
        if !input.isEmpty {
            context.fireChannelRead(NIOAny(ByteBuffer(bytes: input)))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Altinn refused this token for the gateway call that follows (the fast path sent it once).
struct GatewayTokenRefused {
    var token: IssuedToken
}

/// The layout of Linux's `struct ucred`, which Swift's Glibc module does not export (it needs
/// `_GNU_SOURCE`).
struct RawPeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}
