import BrokerTLS
import BrokerTokens
import BrokerUpstream
import CSystemShims
import Dispatch
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

// The gateway on the fast path: a call whose checks pass (`Router.planForward`, the same as
// NIO's route) and whose profile's token is held is sent from the loop that read it, on a
// connection to Altinn the loop keeps, and Altinn's answer is passed to the caller as it comes,
// all without leaving the loop's thread. What it does not take goes to NIO, as every other
// request does: a body not read whole yet, a token not held, a 401 (NIO's route refreshes the
// token and sends the call once more), a URL it has no TLS for.
//
// Why: through NIO a forwarded call cost about 65 µs of the daemon's CPU (two pipelines, a task,
// the codecs), and the gateway reached half of nginx's rate as a reverse proxy.

/// One gateway call under way on a fast-path loop.
final class FastExchange {
    let client: Int32
    let plan: GatewayPlan
    /// Where the call goes, and the loop's kept connections there.
    let pool: EndpointPool
    /// The call on the wire (with the token), written from `written` on.
    let request: [UInt8]
    var written = 0
    /// The caller's request as read, for NIO should the call go there after a 401.
    let original: [UInt8]
    let method: HTTPMethod
    let keepAlive: Bool
    let timeout: Duration
    var connection: WireConnection?
    /// On a kept connection: one that Altinn closed as the call went out is tried once anew.
    var reused = false
    var asked = ContinuousClock.now
    /// Altinn's answer until its head is whole.
    var answer: [UInt8] = []
    var head: WireAnswerHead?
    var body = WireBodyReader(.empty)
    /// Bytes of the answer not yet taken by the caller (reading from Altinn waits for them).
    var pending: [UInt8] = []
    var bytesOut = 0
    /// Altinn's part is over: the answer is read whole (or the broker answered instead).
    var upstreamDone = false
    /// The connection carries nothing after this answer that could be another's.
    var reusable = true
    /// The caller's connection closes after this answer.
    var closeClient = false
    /// Reading from Altinn is paused until the caller takes `pending`.
    var paused = false
    /// The upstream socket is watched for writability (the call did not go out at once).
    var watchingWrite = false
    /// When the call is given up: the answer's head must have come by then; after it, each read.
    var deadline: UInt64

    init(
        client: Int32, plan: GatewayPlan, pool: EndpointPool, request: [UInt8], original: [UInt8], method: HTTPMethod,
        keepAlive: Bool, timeout: Duration, deadline: UInt64
    ) {
        self.client = client
        self.plan = plan
        self.pool = pool
        self.request = request
        self.original = original
        self.method = method
        self.keepAlive = keepAlive
        self.timeout = timeout
        self.deadline = deadline
    }
}

/// A platform's endpoint as one loop sends to it, with the connections the loop keeps there.
final class EndpointPool {
    let wire: WireClient
    let endpoint: WireEndpoint
    /// The base URL's path, which the call's target follows.
    let basePath: String
    /// Kept connections with no call, with when each was last used (the last is the newest).
    var idle: [(connection: WireConnection, since: UInt64)] = []
    /// No longer the loop's pool for its endpoint (reloads replaced its client): a call still
    /// under way on it closes its connection rather than keep it where no call would find it.
    var retired = false

    init(wire: WireClient, endpoint: WireEndpoint, basePath: String) {
        self.wire = wire
        self.endpoint = endpoint
        self.basePath = basePath
    }
}

/// A loop's gateway calls and its kept connections to Altinn; touched only by that loop.
final class FastGateway {
    /// Kept connections with no call, by descriptor (epoll reports those), with their pool.
    var idleByDescriptor: [Int32: (connection: WireConnection, pool: EndpointPool)] = [:]
    /// Calls on a connection, by the connection's descriptor.
    var sending: [Int32: FastExchange] = [:]
    /// Calls waiting for a new connection, by ticket.
    var waiting: [UInt64: FastExchange] = [:]
    var nextTicket: UInt64 = 0
    /// When the calls' deadlines are next looked at.
    var nextCheck: UInt64 = 0
    /// Platforms' endpoints, by client and base URL: a call finds its kept connections with one
    /// lookup by a string it holds (hashing the endpoint itself per call and connection cost more).
    var pools: [EndpointKey: EndpointPool] = [:]
    struct EndpointKey: Hashable {
        var client: ObjectIdentifier
        var base: String
    }

    /// Kept connections per endpoint at most (as nginx's `keepalive 64` per worker).
    static let keptPerEndpoint = 64
    /// The epoll tag of an upstream socket: its descriptor with this bit.
    static let upstreamTag: UInt64 = 1 << 32
    /// Between two reads of an answer's body, at most (as the NIO client's idle read), not
    /// counting the time the caller takes to read; nanoseconds.
    let idleRead: UInt64
    /// A kept connection idle longer is not used again (as the NIO client's): Altinn's own
    /// keep-alive limit would close it under a call; nanoseconds.
    let idleReuse: UInt64
    /// Pools kept at most; past it, all go (`ServerLimits.gatewayPools`).
    let poolsKept: Int

    init(limits: ServerLimits) {
        idleRead = UInt64(max(0, limits.gatewayIdleRead.nanosecondsClamped))
        idleReuse = UInt64(max(0, limits.gatewayIdleReuse.nanosecondsClamped))
        poolsKept = max(1, limits.gatewayPools)
    }

    var busy: Bool { !sending.isEmpty || !waiting.isEmpty }
}

/// What the fast path did with a gateway request.
enum FastGatewayStart {
    /// Sent (or waiting for its connection): the call owns the connection's answer.
    case started
    /// Refused or failed before anything went out, with the broker's answer (audited).
    case answered(BrokerResponse)
    /// Not the fast path's: NIO takes the connection from this request on.
    case handOver
}

extension FastLoop {
    // MARK: - Starting a call

    /// Plans the call in `bytes` (its head, then its whole body) and sends it, when the fast path can.
    func startGateway(_ descriptor: Int32, _ head: GatewayRequestHead, bytes: UnsafeRawBufferPointer, peer: PeerCredentials) -> FastGatewayStart {
        let request = BrokerRequest(gateway: head, body: ByteBuffer(bytes: UnsafeRawBufferPointer(rebasing: bytes[head.length...])))
        switch setup.router.planForward(request, peer: peer) {
        case .answered(.whole(let response)):
            return .answered(response)
        case .answered(.streamed):
            return .handOver
        case .send(let plan):
            // Over the profile's limit: NIO's handler answers 413, as for any other caller.
            guard head.bodyLength <= plan.maxBodyBytes, let token = plan.heldToken?.value, let call = plan.call, let wire = plan.upstream?.wire,
                let pool = pool(wire, base: plan.platform)
            else { return .handOver }
            let wireBytes = wire.request(call, to: pool.endpoint, basePath: pool.basePath, target: plan.target, token: token)
            let exchange = FastExchange(
                client: descriptor, plan: plan, pool: pool, request: wireBytes, original: Array(bytes), method: head.method,
                keepAlive: head.keepAlive, timeout: call.timeout, deadline: Self.now() + UInt64(max(0, call.timeout.nanosecondsClamped)))
            connections[descriptor]!.exchange = exchange
            // The caller's head deadline waits while its call is answered.
            connections[descriptor]!.deadline = .max
            gateway.nextCheck = min(gateway.nextCheck, exchange.deadline)
            if let kept = takeIdle(pool) {
                exchange.reused = true
                attach(exchange, to: kept)
            } else {
                connectAnew(exchange)
            }
            return .started
        }
    }

    /// A platform's endpoint, parsed once per loop and client.
    private func pool(_ wire: WireClient, base: String) -> EndpointPool? {
        let key = FastGateway.EndpointKey(client: ObjectIdentifier(wire), base: base)
        if let known = gateway.pools[key] { return known }
        guard let (endpoint, basePath) = wire.endpoint(base: base) else { return nil }
        // Reloads make new clients: the old ones' pools go, now and then, with their kept
        // connections. (Each pool holds its client, so no other client can have its identifier
        // meanwhile.)
        if gateway.pools.count >= gateway.poolsKept {
            for pool in gateway.pools.values {
                pool.retired = true
                while let (connection, _) = pool.idle.popLast() { dropIdle(connection) }
            }
            gateway.pools.removeAll()
        }
        let pool = EndpointPool(wire: wire, endpoint: endpoint, basePath: basePath)
        gateway.pools[key] = pool
        return pool
    }

    private func takeIdle(_ pool: EndpointPool) -> WireConnection? {
        let now = Self.now()
        while let (connection, since) = pool.idle.popLast() {
            if now - since <= gateway.idleReuse {
                gateway.idleByDescriptor[connection.descriptor] = nil
                return connection
            }
            dropIdle(connection)
        }
        return nil
    }

    /// Closes a kept connection.
    private func dropIdle(_ connection: WireConnection) {
        gateway.idleByDescriptor[connection.descriptor] = nil
        _ = CSystemShims_epollRemove(control.epoll, connection.descriptor)
        connection.close()
    }

    /// A new connection for `exchange`, made off the loop (DNS, the proxy's CONNECT and the
    /// TLS handshake block); the loop is woken with it (`FastLoopControl.deliver`).
    private func connectAnew(_ exchange: FastExchange) {
        gateway.nextTicket += 1
        let ticket = gateway.nextTicket
        gateway.waiting[ticket] = exchange
        exchange.connection = nil
        let control = self.control
        let wire = exchange.pool.wire
        let endpoint = exchange.pool.endpoint
        DispatchQueue.global().async {
            do throws(ForwardingFailure) {
                control.deliver(ticket, .success(try wire.connect(to: endpoint)))
            } catch {
                control.deliver(ticket, .failure(error))
            }
        }
    }

    /// A connection made for the call holding `ticket` (or its failure).
    func connected(_ ticket: UInt64, _ result: Result<WireConnection, ForwardingFailure>) {
        guard let exchange = gateway.waiting.removeValue(forKey: ticket) else {
            // The call was given up meanwhile (the broker answered 504): its connection is not
            // kept, whichever pool it was for.
            if case .success(let connection) = result { connection.close() }
            return
        }
        switch result {
        case .success(let connection):
            guard watch(connection) else {
                connection.close()
                return fail(exchange, Router.response(for: .unreachable("Altinn could not be reached: the connection could not be watched")))
            }
            attach(exchange, to: connection)
        case .failure(let failure):
            fail(exchange, Router.response(for: failure))
        }
    }

    private func watch(_ connection: WireConnection) -> Bool {
        CSystemShims_epollAdd(control.epoll, connection.descriptor, CSystemShims_EPOLLIN, UInt64(connection.descriptor) | FastGateway.upstreamTag) == 0
    }

    private func attach(_ exchange: FastExchange, to connection: WireConnection) {
        exchange.connection = connection
        exchange.asked = .now
        gateway.sending[connection.descriptor] = exchange
        send(exchange)
    }

    // MARK: - Sending

    private func send(_ exchange: FastExchange) {
        guard let connection = exchange.connection else { return }
        while exchange.written < exchange.request.count {
            let progress = exchange.request.withUnsafeBytes { connection.write(UnsafeRawBufferPointer(rebasing: $0[exchange.written...])) }
            switch progress {
            case .done(let count):
                exchange.written += count
            case .wantWrite:
                setWatch(exchange, write: true)
                return
            case .wantRead:
                return
            case .closed, .failed:
                // A kept connection Altinn had closed: nothing of this call reached it.
                if exchange.reused {
                    dropUpstream(exchange)
                    exchange.written = 0
                    exchange.reused = false
                    return connectAnew(exchange)
                }
                if case .failed(let reason) = progress {
                    return fail(exchange, Router.response(for: .unreachable("Altinn could not be reached: \(reason)")))
                }
                return fail(exchange, Router.response(for: .unreachable("Altinn closed the connection without answering")))
            }
        }
        if exchange.watchingWrite { setWatch(exchange, write: false) }
    }

    private func setWatch(_ exchange: FastExchange, write: Bool) {
        guard let connection = exchange.connection, exchange.watchingWrite != write else { return }
        exchange.watchingWrite = write
        let events = (exchange.paused ? 0 : CSystemShims_EPOLLIN) | (write ? CSystemShims_EPOLLOUT : 0)
        _ = CSystemShims_epollModify(control.epoll, connection.descriptor, events, UInt64(connection.descriptor) | FastGateway.upstreamTag)
    }

    // MARK: - Altinn's answer

    /// An event on an upstream socket.
    func upstreamEvent(_ descriptor: Int32, _ events: UInt32) {
        if let (connection, pool) = gateway.idleByDescriptor[descriptor] {
            // A kept connection with no call speaks only to close (or to say nothing we asked).
            pool.idle.removeAll { $0.connection === connection }
            dropIdle(connection)
            return
        }
        guard let exchange = gateway.sending[descriptor] else { return }
        if exchange.written < exchange.request.count {
            // The call is not out yet (TLS may want either event to go on writing).
            send(exchange)
            if exchange.written < exchange.request.count { return }
        } else if exchange.watchingWrite {
            // A read that wanted to write (TLS) has its room now.
            setWatch(exchange, write: false)
        }
        if !exchange.paused { receive(exchange) }
    }

    private func receive(_ exchange: FastExchange) {
        guard let connection = exchange.connection, !exchange.upstreamDone else { return }
        switch connection.read(into: readBuffer) {
        case .done(let count):
            exchange.deadline = exchange.head == nil ? exchange.deadline : Self.now() + gateway.idleRead
            take(exchange, UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
        case .wantRead:
            return
        case .wantWrite:
            setWatch(exchange, write: true)
        case .closed:
            upstreamClosed(exchange)
        case .failed(let reason):
            if exchange.head == nil {
                fail(exchange, Router.response(for: .unreachable("Altinn could not be reached: \(reason)")))
            } else {
                abort(exchange)
            }
        }
    }

    private func upstreamClosed(_ exchange: FastExchange) {
        guard let head = exchange.head else {
            // Nothing came back. A kept connection that Altinn closed as the call went out: a call
            // that may be sent twice is, once, on a new connection (as the NIO client does).
            if exchange.reused, exchange.answer.isEmpty, [.GET, .PUT, .DELETE].contains(exchange.method) {
                dropUpstream(exchange)
                exchange.written = 0
                exchange.reused = false
                return connectAnew(exchange)
            }
            return fail(exchange, Router.response(for: .unreachable("Altinn closed the connection without answering")))
        }
        if head.framing == .untilClose {
            exchange.reusable = false
            return upstreamFinished(exchange)
        }
        abort(exchange)
    }

    /// Bytes read from Altinn.
    private func take(_ exchange: FastExchange, _ bytes: UnsafeRawBufferPointer) {
        guard exchange.head == nil else { return passOn(exchange, bytes) }
        if exchange.answer.isEmpty {
            // Read where it lies: a head that came in one read (nearly every one) is not copied.
            if let partial = readHead(exchange, bytes) { exchange.answer = Array(partial) }
            return
        }
        exchange.answer.append(contentsOf: bytes)
        let answer = exchange.answer
        exchange.answer = []
        answer.withUnsafeBytes { whole in
            if let partial = readHead(exchange, whole) { exchange.answer = Array(partial) }
        }
    }

    /// Reads the head at the start of `bytes` (Altinn's answer from its start) and deals with
    /// it and what follows; what must be kept until more comes, while the head is not whole.
    private func readHead(_ exchange: FastExchange, _ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        var start = 0
        while true {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[start...])
            switch WireAnswerHead.parse(rest, method: exchange.method) {
            case .incomplete:
                return rest
            case .invalid(let reason):
                exchange.reusable = false
                fail(exchange, Router.response(for: .unreachable(reason)))
                return nil
            case .head(let head) where (100..<200).contains(head.status):
                // 100 Continue and other interim answers are the broker's, not the caller's.
                start += head.length
            case .head(let head):
                answered(exchange, head, rest)
                return nil
            }
        }
    }

    /// Altinn's head has come: a 401 goes to NIO's route (a new token, one replay); any other
    /// answer's head goes to the caller, with the body as it comes.
    private func answered(_ exchange: FastExchange, _ head: WireAnswerHead, _ answer: UnsafeRawBufferPointer) {
        let metrics = exchange.plan.metrics
        metrics.gatewayUpstream(profile: exchange.plan.profile, took: exchange.asked.duration(to: .now))
        exchange.head = head
        exchange.reusable = head.reusable
        if head.status == 401 {
            return replayOnNIO(exchange)
        }
        exchange.deadline = Self.now() + gateway.idleRead
        var out: [UInt8] = []
        out.reserveCapacity(answer.count + 64)
        out.append(contentsOf: "HTTP/1.1 ".utf8)
        out.append(contentsOf: String(head.status).utf8)
        out.append(0x20)
        out.append(contentsOf: HTTPResponseStatus(statusCode: head.status).reasonPhrase.utf8)
        out.append(contentsOf: "\r\n".utf8)
        for (name, value) in head.fields where GatewayHeaders.passesInbound(UnsafeRawBufferPointer(rebasing: answer[name]), named: head.connectionOptions) {
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: answer[name]))
            out.append(contentsOf: ": ".utf8)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: answer[value]))
            out.append(contentsOf: "\r\n".utf8)
        }
        var keepAlive = exchange.keepAlive && !stopping
        switch head.framing {
        case .chunked: out.append(contentsOf: "Transfer-Encoding: chunked\r\n".utf8)
        case .untilClose: keepAlive = false
        case .length, .empty: break
        }
        out.append(contentsOf: (keepAlive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n").utf8)
        exchange.pending = out
        exchange.closeClient = !keepAlive
        metrics.request(route: Route.api.rawValue, status: UInt(head.status))
        exchange.body = WireBodyReader(head.framing)
        passOn(exchange, UnsafeRawBufferPointer(rebasing: answer[head.length...]))
    }

    /// Body bytes: to the caller, as far as they belong to this answer.
    private func passOn(_ exchange: FastExchange, _ bytes: UnsafeRawBufferPointer) {
        if !bytes.isEmpty {
            guard let count = exchange.body.take(bytes) else { return abort(exchange) }
            if count < bytes.count { exchange.reusable = false }
            exchange.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[0..<count]))
            exchange.bytesOut += count
        }
        if exchange.body.finished { upstreamFinished(exchange) }
        flushToClient(exchange)
    }

    /// Altinn's answer is read whole: its connection is kept (or closed).
    private func upstreamFinished(_ exchange: FastExchange) {
        guard !exchange.upstreamDone else { return }
        exchange.upstreamDone = true
        guard let connection = exchange.connection else { return }
        gateway.sending[connection.descriptor] = nil
        exchange.connection = nil
        if exchange.reusable && !stopping {
            if exchange.paused || exchange.watchingWrite {
                // Watched for nothing, or for room, while the caller was slow: for closing again.
                _ = CSystemShims_epollModify(
                    control.epoll, connection.descriptor, CSystemShims_EPOLLIN, UInt64(connection.descriptor) | FastGateway.upstreamTag)
                exchange.watchingWrite = false
            }
            keep(connection, in: exchange.pool)
        } else {
            _ = CSystemShims_epollRemove(control.epoll, connection.descriptor)
            connection.close()
        }
    }

    private func keep(_ connection: WireConnection, in pool: EndpointPool) {
        guard pool.idle.count < FastGateway.keptPerEndpoint, !pool.retired, !stopping else {
            _ = CSystemShims_epollRemove(control.epoll, connection.descriptor)
            connection.close()
            return
        }
        pool.idle.append((connection, Self.now()))
        gateway.idleByDescriptor[connection.descriptor] = (connection, pool)
    }

    /// Closes the call's connection to Altinn, which carries nothing more of use.
    private func dropUpstream(_ exchange: FastExchange) {
        guard let connection = exchange.connection else { return }
        gateway.sending[connection.descriptor] = nil
        exchange.connection = nil
        exchange.watchingWrite = false
        exchange.paused = false
        _ = CSystemShims_epollRemove(control.epoll, connection.descriptor)
        connection.close()
    }

    // MARK: - The caller's side

    /// Writes what the caller has not taken; reading from Altinn pauses while it has not.
    func flushToClient(_ exchange: FastExchange) {
        if !exchange.pending.isEmpty {
            let written = exchange.pending.withUnsafeBytes { Self.writeSome(exchange.client, $0) }
            if written < 0 { return abort(exchange) }
            exchange.pending.removeFirst(written)
        }
        let blocked = !exchange.pending.isEmpty
        if blocked != exchange.paused {
            exchange.paused = blocked
            // The caller's reading time does not count against Altinn's pauses.
            if exchange.head != nil && !exchange.upstreamDone { exchange.deadline = blocked ? .max : Self.now() + gateway.idleRead }
            // The caller's socket watched for room while Altinn's is not read, and back.
            _ = CSystemShims_epollModify(
                control.epoll, exchange.client, blocked ? CSystemShims_EPOLLIN | CSystemShims_EPOLLOUT : CSystemShims_EPOLLIN, UInt64(exchange.client))
            if let connection = exchange.connection {
                let events = (blocked ? 0 : CSystemShims_EPOLLIN) | (exchange.watchingWrite ? CSystemShims_EPOLLOUT : 0)
                _ = CSystemShims_epollModify(control.epoll, connection.descriptor, events, UInt64(connection.descriptor) | FastGateway.upstreamTag)
            }
        }
        if !blocked && exchange.upstreamDone { completed(exchange) }
    }

    /// The caller has the whole answer: the audit line, and the connection goes on (or closes).
    private func completed(_ exchange: FastExchange) {
        let client = exchange.client
        if let head = exchange.head {
            exchange.plan.finished(status: head.status, bytesOut: exchange.bytesOut, complete: true, replayed: false)
        }
        let close = exchange.closeClient
        guard connections[client] != nil else { return }
        connections[client]!.exchange = nil
        if close || stopping {
            closeConnection(client)
            return
        }
        connections[client]!.deadline = Self.now() + headTimeout
        let stashed = connections[client]!.pending
        if !stashed.isEmpty {
            connections[client]!.pending = []
            stashed.withUnsafeBytes { serve(client, $0) }
        }
    }

    /// The broker's own answer instead of Altinn's (nothing of Altinn's reached the caller).
    private func fail(_ exchange: FastExchange, _ response: BrokerResponse) {
        dropUpstream(exchange)
        forget(exchange)
        exchange.upstreamDone = true
        guard case .whole(let answer) = exchange.plan.own(response) else { return }
        let keepAlive = exchange.keepAlive && !stopping
        exchange.closeClient = !keepAlive
        var bytes: [UInt8] = []
        answer.append(keepAlive: keepAlive, to: &bytes)
        exchange.pending = bytes
        exchange.head = nil
        flushToClient(exchange)
    }

    /// The call cannot go on (the caller left, Altinn's answer broke off): both sides closed,
    /// the audit line says it was not whole.
    func abort(_ exchange: FastExchange) {
        dropUpstream(exchange)
        forget(exchange)
        if !exchange.upstreamDone || !exchange.pending.isEmpty {
            exchange.upstreamDone = true
            exchange.pending = []
            exchange.plan.finished(status: exchange.head?.status ?? 0, bytesOut: exchange.bytesOut, complete: false, replayed: false)
        }
        if connections[exchange.client]?.exchange === exchange {
            connections[exchange.client]!.exchange = nil
            closeConnection(exchange.client)
        }
    }

    /// A call waiting for a connection no longer is.
    private func forget(_ exchange: FastExchange) {
        guard !gateway.waiting.isEmpty else { return }
        for (ticket, waiting) in gateway.waiting where waiting === exchange { gateway.waiting[ticket] = nil }
    }

    /// Altinn refused the token: NIO's route gets a new one (one fetch for every call refused
    /// the same token) and sends the call once more; the answer it gets goes to the caller.
    private func replayOnNIO(_ exchange: FastExchange) {
        dropUpstream(exchange)
        exchange.upstreamDone = true
        let client = exchange.client
        guard connections[client] != nil else { return }
        connections[client]!.exchange = nil
        let input = exchange.original + connections[client]!.pending
        connections[client]!.pending = []
        giveUp(client, input: input, output: [], refusedToken: exchange.plan.heldToken)
    }

    /// Calls whose answer is late: 504 before Altinn's head, the connection closed after it.
    func checkGatewayDeadlines(now: UInt64) {
        var late: [FastExchange] = []
        for exchange in gateway.sending.values where exchange.deadline <= now { late.append(exchange) }
        for exchange in gateway.waiting.values where exchange.deadline <= now { late.append(exchange) }
        for exchange in late {
            if exchange.head == nil {
                fail(exchange, Router.response(for: .timedOut("Altinn did not answer within \(exchange.timeout.components.seconds) s")))
            } else {
                abort(exchange)
            }
        }
    }
}

extension Duration {
    /// Whole nanoseconds, at most Int64's.
    fileprivate var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        guard seconds < Int64.max / 1_000_000_000 else { return .max }
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
