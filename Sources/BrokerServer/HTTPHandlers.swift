import BrokerTokens
import BrokerUpstream
import Logging
import NIOConcurrencyHelpers
package import NIOCore
import NIOHTTP1
import NIOPosix

/// Limits that keep one client from holding memory or the daemon's attention.
package struct ServerLimits: Sendable {
    /// Request line and headers together.
    package var headerBytes = 16 * 1024
    /// A request body (the ID-porten exchange sends a token).
    package var bodyBytes = 64 * 1024
    /// The request target.
    package var uriBytes = 4 * 1024
    /// Time allowed for a request's head to arrive, from connect or the previous answer.
    package var headTimeout: TimeAmount = .seconds(10)
    /// Time allowed for a whole request (head and body) once its head has arrived.
    package var requestTimeout: TimeAmount = .seconds(60)
    /// Open connections at most; beyond it the oldest connection is closed.
    package var maxConnections = 1024
    /// The fast path's gateway calls: how long Altinn's answer may pause between two reads
    /// (the caller's reading time not counted), as the NIO client's.
    package var gatewayIdleRead = UpstreamClient.forwardingIdleRead
    /// The fast path's gateway calls: how long a kept connection to Altinn may sit idle and
    /// still be used, as the NIO client's.
    package var gatewayIdleReuse = UpstreamClient.forwardingIdleReuse
    /// The fast path's gateway calls: platforms' endpoints a loop keeps connections for before
    /// it lets all of them go (reloads make new clients, each with its own).
    package var gatewayPools = 64

    /// The defaults.
    package init() {}
}

/// Counts raw bytes ahead of the HTTP decoder, so that a request too large for the limits is cut
/// off before it is buffered, whatever the decoder would do with it.
final class RequestByteGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let baseLimit: Int
    private var limit: Int
    private var count = 0
    private var tripped = false

    init(limit: Int) {
        self.baseLimit = limit
        self.limit = limit
    }

    /// Called when a whole request has been read: the next one starts from zero, under the
    /// usual limit.
    func requestCompleted() {
        count = 0
        limit = baseLimit
    }

    /// Lets the request under way have a body of `bodyBytes` (a gateway request, whose
    /// profile sets its own limit).
    func allowBody(_ bodyBytes: Int, headerBytes: Int) {
        limit = max(baseLimit, headerBytes + bodyBytes + 16 * 1024)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !tripped else { return }
        let buffer = unwrapInboundIn(data)
        count += buffer.readableBytes
        if count > limit {
            tripped = true
            // Ahead of NIO's codec, so written as bytes, by the fast path's serialiser.
            var answer: [UInt8] = []
            BrokerResponse.error(.requestHeaderFieldsTooLarge, "invalid_request", "the request is larger than this socket allows").append(
                keepAlive: false, to: &answer)
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(NIOAny(ByteBuffer(bytes: answer))).whenComplete { _ in bound.value.close(promise: nil) }
            return
        }
        context.fireChannelRead(data)
    }

    /// Shutdown while part of a request is buffered: NIO's pipelining handler would take the
    /// connection for idle (it only sees whole heads), close it, and then assert when its own
    /// error handler answers the cut-off head with a 400 (debug builds). The broker's handler
    /// takes this one instead (`QuiesceWithPartialRequest`) and closes when it can.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent && count > 0 {
            context.fireUserInboundEventTriggered(QuiesceWithPartialRequest())
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}

/// `ChannelShouldQuiesceEvent` for a connection holding part of a request (see `RequestByteGuard`).
struct QuiesceWithPartialRequest {}

/// Answers a request NIO's HTTP decoder refused (it closes the connection next): as NIO's
/// `HTTPServerProtocolErrorHandler` does, but with the broker's error body, and 431 for a head
/// over the limit (NIO answers every parser error with an empty 400).
final class ProtocolErrorAnswer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// A response has begun and not ended: no second one may start.
    private var responding = false

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? HTTPParserError, !responding {
            let response: BrokerResponse =
                switch error {
                case .headerOverflow: .error(.requestHeaderFieldsTooLarge, "invalid_request", "the request line and headers are larger than this socket allows")
                default: .error(.badRequest, "invalid_request", "the request is not valid HTTP/1.1")
                }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: response.wireHeaders(keepAlive: false)))),
                promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        context.fireErrorCaught(error)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head(let head) where head.status.code >= 200: responding = true
        case .end: responding = false
        default: break
        }
        context.write(data, promise: promise)
    }
}

/// One connection's HTTP exchange: collects a request within the limits, asks the router, writes
/// the answer; keep-alive, head timeout and graceful quiescing.
final class BrokerHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let router: Router
    private let peer: PeerCredentials
    private let limits: ServerLimits
    private let byteGuard: RequestByteGuard
    private let logger: Logger

    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    /// The largest body the request under way may have.
    private var bodyLimit = 0
    private var rejected = false
    private var responding = false
    private var quiescing = false
    /// When the connection is closed unless it has moved on: while waiting for a request head,
    /// when the head must have arrived (`headTimeout`); while reading a request, when all of it
    /// must have arrived (`requestTimeout`). Nil while a request is answered.
    private var headDueBy: NIODeadline?
    /// The one timer that enforces `headDueBy`; moved lazily, so a keep-alive request costs
    /// no timer of its own. (It also stands in for an idle-timeout handler: a connection
    /// between requests has `headTimeout`.)
    private var headTimer: Scheduled<Void>?
    /// The token Altinn refused the next request (a gateway call the fast path sent) with.
    private var refusedToken: IssuedToken?

    init(router: Router, peer: PeerCredentials, limits: ServerLimits, byteGuard: RequestByteGuard, logger: Logger) {
        self.router = router
        self.peer = peer
        self.limits = limits
        self.byteGuard = byteGuard
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        armHeadDeadline(context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        headTimer?.cancel()
        headTimer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let requestHead):
            headDueBy = context.eventLoop.now + limits.requestTimeout
            head = requestHead
            body.clear()
            rejected = false
            bodyLimit = limits.bodyBytes
            if requestHead.uri.utf8.starts(with: "/v1/api/".utf8), let limit = router.gatewayBodyLimit(path: BrokerRequest.path(of: requestHead.uri)) {
                bodyLimit = limit
                byteGuard.allowBody(limit, headerBytes: limits.headerBytes)
            }
            if requestHead.uri.utf8.count > limits.uriBytes {
                rejected = true
                respond(
                    context: context, .error(.uriTooLong, "invalid_request", "the request target is longer than \(limits.uriBytes) bytes"), keepAlive: false)
            } else if requestHead.headers.contains(name: "Transfer-Encoding") && requestHead.headers.contains(name: "Content-Length") {
                // A classic request-smuggling shape: refuse it rather than pick one framing.
                rejected = true
                respond(
                    context: context, .error(.badRequest, "invalid_request", "Content-Length together with Transfer-Encoding is not allowed"), keepAlive: false)
            } else if let length = requestHead.headers.first(name: "Content-Length").flatMap({ Int($0) }), length > bodyLimit {
                // Refused before the body is read: a client waiting on 100-continue sends none.
                rejected = true
                respond(context: context, .error(.payloadTooLarge, "invalid_request", "the request body is larger than \(bodyLimit) bytes"), keepAlive: false)
            } else if requestHead.headers.contains(name: "Expect"),
                requestHead.headers[canonicalForm: "expect"].contains(where: { $0.lowercased() == "100-continue" })
            {
                // curl asks before sending a body over 1 KiB, and would otherwise wait a second.
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: requestHead.version, status: .continue))), promise: nil)
            }
        case .body(var chunk):
            guard !rejected else { return }
            if body.readableBytes + chunk.readableBytes > bodyLimit {
                rejected = true
                respond(context: context, .error(.payloadTooLarge, "invalid_request", "the request body is larger than \(bodyLimit) bytes"), keepAlive: false)
                return
            }
            body.writeBuffer(&chunk)
        case .end:
            headDueBy = nil
            byteGuard.requestCompleted()
            guard !rejected, let requestHead = head else { return }
            head = nil
            let request = BrokerRequest(head: requestHead, body: body)
            body = ByteBuffer()
            let keepAlive = requestHead.isKeepAlive
            if let response = router.handleImmediately(request, peer: peer) {
                respond(context: context, response, keepAlive: keepAlive)
                return
            }
            responding = true
            let router = self.router
            let peer = self.peer
            let loop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: loop)
            if request.path.utf8.starts(with: "/v1/api/".utf8), MultiThreadedEventLoopGroup.currentEventLoop === loop {
                // A gateway call: on this connection's loop, from the checks to the last write.
                // (Only on NIO's own loops: a test's loop runs its tasks its own way.)
                let executor = loopExecutor(for: loop)
                let refused = refusedToken
                refusedToken = nil
                Task(executorPreference: executor) {
                    await BrokerHTTPHandler.answer(request, from: router, peer: peer, keepAlive: keepAlive, to: bound, on: loop, refused: refused)
                }
                return
            }
            Task { await BrokerHTTPHandler.answer(request, from: router, peer: peer, keepAlive: keepAlive, to: bound, on: loop) }
        }
    }

    /// This connection's loop as a task executor, made at its first gateway call.
    private var executor: LoopTaskExecutor?

    private func loopExecutor(for loop: any EventLoop) -> LoopTaskExecutor {
        if let executor { return executor }
        let made = LoopTaskExecutor(loop)
        executor = made
        return made
    }

    /// The router's answer to a request that needs waiting for, written on the connection's loop.
    private static func answer(
        _ request: BrokerRequest, from router: Router, peer: PeerCredentials, keepAlive: Bool,
        to bound: NIOLoopBound<(BrokerHTTPHandler, ChannelHandlerContext)>, on loop: any EventLoop, refused: IssuedToken? = nil
    ) async {
        let answer: RouterAnswer
        if let refused {
            answer = await router.forward(request, peer: peer, refused: refused)
        } else {
            answer = await router.handle(request, peer: peer)
        }
        switch answer {
        case .whole(let response):
            if loop.inEventLoop {
                let (handler, context) = bound.value
                handler.respond(context: context, response, keepAlive: keepAlive)
                return
            }
            loop.execute {
                let (handler, context) = bound.value
                handler.respond(context: context, response, keepAlive: keepAlive)
            }
        case .streamed(let streamed):
            await stream(streamed, keepAlive: keepAlive, to: bound, on: loop)
        }
    }

    /// Writes Altinn's answer as it comes: each chunk is read from Altinn only once the last
    /// has been written to the caller's socket, so a large answer to a slow reader holds one
    /// chunk in the daemon, not the answer. An answer that breaks off closes the connection
    /// (its head is out: nothing else can tell the caller).
    private static func stream(
        _ answer: StreamedAnswer, keepAlive: Bool, to bound: NIOLoopBound<(BrokerHTTPHandler, ChannelHandlerContext)>, on loop: any EventLoop
    ) async {
        var written = 0
        var complete = false
        do {
            // On the loop already (a gateway call's task runs there): no hop for each write.
            if loop.inEventLoop {
                let (handler, context) = bound.value
                try handler.startStream(context: context, answer, keepAlive: keepAlive)
            } else {
                try await loop.submit {
                    let (handler, context) = bound.value
                    try handler.startStream(context: context, answer, keepAlive: keepAlive)
                }.get()
            }
            // With Content-Length known, the last chunk goes out with the answer's end in one
            // write: one system call and one wakeup of the caller, not two.
            let length = answer.headers.first(name: "Content-Length").flatMap { Int($0) }
            for try await chunk in answer.body {
                let write: EventLoopFuture<Void>
                if loop.inEventLoop {
                    let (handler, context) = bound.value
                    if let length, written + chunk.readableBytes == length {
                        written += chunk.readableBytes
                        context.write(handler.wrapOutboundOut(.body(.byteBuffer(chunk))), promise: nil)
                        handler.endStream(context: context, keepAlive: keepAlive, complete: true)
                        answer.finished(written, true)
                        return
                    }
                    write = context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(chunk))))
                } else {
                    write = loop.flatSubmit {
                        let (handler, context) = bound.value
                        return context.writeAndFlush(handler.wrapOutboundOut(.body(.byteBuffer(chunk))))
                    }
                }
                try await write.get()
                written += chunk.readableBytes
            }
            complete = true
        } catch {
            complete = false
        }
        if loop.inEventLoop {
            let (handler, context) = bound.value
            handler.endStream(context: context, keepAlive: keepAlive, complete: complete)
        } else {
            let whole = complete
            loop.execute {
                let (handler, context) = bound.value
                handler.endStream(context: context, keepAlive: keepAlive, complete: whole)
            }
        }
        answer.finished(written, complete)
    }

    private func startStream(context: ChannelHandlerContext, _ answer: StreamedAnswer, keepAlive: Bool) throws {
        guard context.channel.isActive else { throw ChannelError.ioOnClosedChannel }
        var headers = answer.headers
        headers.replaceOrAdd(name: "Connection", value: keepAlive && !quiescing ? "keep-alive" : "close")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: answer.status, headers: headers))), promise: nil)
    }

    private func endStream(context: ChannelHandlerContext, keepAlive: Bool, complete: Bool) {
        responding = false
        guard context.channel.isActive else { return }
        guard complete else {
            // No end: a chunked answer's last chunk would tell the caller it had all of it.
            context.close(promise: nil)
            return
        }
        if keepAlive && !quiescing {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            armHeadDeadline(context: context)
        } else {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
        }
    }

    private func respond(context: ChannelHandlerContext, _ response: BrokerResponse, keepAlive: Bool) {
        responding = false
        guard context.channel.isActive else { return }
        let keepOpen = keepAlive && !quiescing
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: response.wireHeaders(keepAlive: keepOpen)))),
            promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        if keepOpen {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            armHeadDeadline(context: context)
        } else {
            let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
        }
    }

    /// Closes a connection whose next request head does not arrive in time (slowloris). The
    /// timer is scheduled only when none is pending; when it fires early (the deadline moved on
    /// with later requests) it schedules itself again for the current deadline.
    private func armHeadDeadline(context: ChannelHandlerContext) {
        headDueBy = context.eventLoop.now + limits.headTimeout
        if headTimer == nil { scheduleHeadTimer(context: context, at: headDueBy!) }
    }

    private func scheduleHeadTimer(context: ChannelHandlerContext, at deadline: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        headTimer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.headTimer = nil
            guard let due = handler.headDueBy else { return }
            if due <= context.eventLoop.now {
                context.close(promise: nil)
            } else {
                handler.scheduleHeadTimer(context: context, at: due)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let refused = event as? GatewayTokenRefused {
            refusedToken = refused.token
        } else if event is ChannelShouldQuiesceEvent || event is QuiesceWithPartialRequest {
            quiescing = true
            if !responding && head == nil { context.close(promise: nil) }
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)", "pid": "\(peer.pid)"])
        context.close(promise: nil)
    }
}
