import NIOCore
import NIOHTTP1

/// One kept-alive connection to Altinn, carrying one forwarded call at a time: it writes the
/// request in one flush, hands the answer's head back as soon as it is read, and streams the
/// body to its reader, reading from Altinn only as fast as the reader takes it. Everything it
/// does happens on its channel's event loop, the loop of the caller's connection. (`@unchecked
/// Sendable`, as NIO's handlers are used: made and used on that loop alone.)
final class ForwardingConnection: ChannelDuplexHandler, RemovableChannelHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// Why an exchange got no answer.
    enum Failure: Error {
        /// The connection closed before the answer's head (with nothing of it read).
        case closed
        /// No head within the request's timeout.
        case timedOut
        /// An answer that broke off, or paused longer than the idle limit.
        case brokenOff
        /// What the channel reported: TLS, a reset, a malformed answer.
        case transport(any Error)
    }

    private enum State {
        /// In the pool, or being set up.
        case idle
        /// The request is out; its answer's head is due.
        case awaitingHead(EventLoopPromise<ForwardedAnswer>)
        /// The head is out to the caller; the body goes to `source`.
        case streaming(ForwardedAnswer.Body.Chunks.Source)
        case closed
    }

    /// Where the connection goes: its pool's key.
    let endpoint: ForwardingEndpoint
    /// The pool it goes back to after an answer (on the same loop).
    let pool: ForwardingPool
    /// Calls sent on it: above one, it is a kept-alive connection that the server may have
    /// closed meanwhile.
    private(set) var uses = 0
    /// When it went back to the pool: a connection idle too long is not used again.
    var idleSince = NIODeadline.uptimeNanoseconds(0)

    private var state = State.idle
    private var context: ChannelHandlerContext?
    /// Each exchange's number: a body's reader that lets go late must not touch the next one.
    private var exchange = 0
    /// Whether the answer allows the connection to be kept.
    private var keepAlive = true
    /// The reader has enough for now: the channel's next read waits until it asks for more.
    private var paused = false
    private var readPending = false
    /// The one timer of the connection, moved lazily as `due` moves (the head's deadline, then
    /// the body's idle limit), so that a call schedules no timer of its own.
    private var due: NIODeadline?
    private var timer: (task: Scheduled<Void>, at: NIODeadline)?
    private let idleRead: TimeAmount

    init(endpoint: ForwardingEndpoint, pool: ForwardingPool, idleRead: TimeAmount) {
        self.endpoint = endpoint
        self.pool = pool
        self.idleRead = idleRead
    }

    /// Whether a call can be sent on it now.
    var isUsable: Bool {
        guard case .idle = state, let context else { return false }
        return context.channel.isActive
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.task.cancel()
        self.context = nil
    }

    /// Sends `request` (its head already made, the `Host` and framing headers included) and
    /// completes `promise` with the answer once its head is read.
    func send(_ head: HTTPRequestHead, body: ByteBuffer, timeout: TimeAmount, promise: EventLoopPromise<ForwardedAnswer>) {
        guard case .idle = state, let context, context.channel.isActive else {
            promise.fail(Failure.closed)
            return
        }
        uses += 1
        exchange &+= 1
        keepAlive = true
        state = .awaitingHead(promise)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        moveDeadline(to: context.eventLoop.now + timeout, context: context)
    }

    /// Closes the connection; a call on it fails, or its body breaks off.
    func close() {
        context?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard case .awaitingHead(let promise) = state else {
                // An answer nobody asked for: the connection's framing cannot be trusted.
                context.close(promise: nil)
                return
            }
            keepAlive = head.isKeepAlive
            let made = ForwardedAnswer.Body.Chunks.makeSequence(
                backPressureStrategy: .init(lowWatermark: 2, highWatermark: 4), finishOnDeinit: false,
                delegate: Demand(connection: NIOLoopBound(self, eventLoop: context.eventLoop), exchange: exchange))
            state = .streaming(made.source)
            moveDeadline(to: context.eventLoop.now + idleRead, context: context)
            promise.succeed(ForwardedAnswer(status: Int(head.status.code), headers: head.headers, body: ForwardedAnswer.Body(chunks: made.sequence)))
        case .body(let chunk):
            guard case .streaming(let source) = state else { return }
            if due != nil { due = context.eventLoop.now + idleRead }
            if case .stopProducing = source.yield(chunk) { paused = true }
        case .end:
            guard case .streaming(let source) = state else { return }
            state = .idle
            due = nil
            paused = false
            source.finish()
            if keepAlive {
                pool.release(self)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readPending = true
        } else {
            context.read()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.transport(error), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(.closed, context: context)
        pool.closed(self)
        context.fireChannelInactive()
    }

    /// Ends the call under way with `failure`, at once (closing a TLS connection waits for the
    /// peer's goodbye, for seconds when the peer has stalled), and closes the connection.
    private func fail(_ failure: Failure, context: ChannelHandlerContext) {
        let was = state
        state = .closed
        due = nil
        switch was {
        case .awaitingHead(let promise):
            promise.fail(failure)
        case .streaming(let source):
            source.finish(Failure.brokenOff)
        case .idle, .closed:
            break
        }
        context.close(promise: nil)
    }

    /// The reader wants more of exchange `number`'s body.
    fileprivate func resume(_ number: Int) {
        guard number == exchange, paused else { return }
        paused = false
        if readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// The reader of exchange `number`'s body is gone: a body not read to its end leaves the
    /// connection mid-answer, so it cannot carry another call.
    fileprivate func abandoned(_ number: Int) {
        guard number == exchange, case .streaming = state else { return }
        context?.close(promise: nil)
    }

    private func moveDeadline(to deadline: NIODeadline, context: ChannelHandlerContext) {
        due = deadline
        // A later deadline is met by the pending timer rescheduling itself; an earlier one (the
        // next call's head, after the last one's body) needs its own.
        if let timer, timer.at <= deadline { return }
        timer?.task.cancel()
        schedule(at: deadline, context: context)
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let task = context.eventLoop.scheduleTask(deadline: deadline) {
            let (connection, context) = bound.value
            connection.timer = nil
            guard let due = connection.due else { return }
            if due > context.eventLoop.now {
                connection.schedule(at: due, context: context)
                return
            }
            switch connection.state {
            case .awaitingHead:
                connection.fail(.timedOut, context: context)
            case .streaming where connection.paused:
                // The reader is slow, not Altinn: the idle limit counts from its next read.
                connection.due = context.eventLoop.now + connection.idleRead
                connection.schedule(at: connection.due!, context: context)
            case .streaming:
                connection.fail(.brokenOff, context: context)
            case .idle, .closed:
                break
            }
        }
        timer = (task, deadline)
    }

    /// The body reader's demand, carried back to the connection's loop.
    struct Demand: NIOAsyncSequenceProducerDelegate {
        let connection: NIOLoopBound<ForwardingConnection>
        let exchange: Int

        func produceMore() { onLoop { $0.resume($1) } }

        func didTerminate() { onLoop { $0.abandoned($1) } }

        /// `action` on the connection's loop: at once when called there, else handed to it.
        private func onLoop(_ action: @escaping @Sendable (ForwardingConnection, Int) -> Void) {
            let (connection, exchange) = (connection, exchange)
            if connection.eventLoop.inEventLoop {
                action(connection.value, exchange)
            } else {
                connection.eventLoop.execute { action(connection.value, exchange) }
            }
        }
    }
}
