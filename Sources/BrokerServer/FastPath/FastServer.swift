import BrokerPOSIX
import BrokerTokens
import BrokerUpstream
import CSystemShims
import Dispatch
import FoundationEssentials
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The socket's accepting side, and the hot path: one thread per core, each with its own epoll
/// set, accepting from the shared listening socket (`EPOLLEXCLUSIVE`, so one connection wakes one
/// thread) and answering, on that thread and without leaving it, the requests that need no
/// waiting: `GET /v1/token/{profile}` while the token is cached (`Router.handleImmediately`).
/// Every other request, and any input `SimpleRequestScanner` does not recognise, hands the
/// connection to NIO with the bytes read so far (`handOver`), where the HTTP/1 codec and
/// `BrokerHTTPHandler` serve it as they serve everything.
///
/// Why not NIO for all of it: a NIO channel costs a cross-thread hop at accept, a pipeline of five
/// handlers and about 19 system calls per connection; measured, 200 µs of CPU per one-request
/// connection and 0.3× nginx's rate. Here a one-request connection is accept4, getsockopt,
/// epoll_ctl, read, write and close.
final class FastServer: Sendable {
    private let loops: [FastLoopControl]
    private let finished = DispatchGroup()
    let setup: FastLoop.Setup

    /// `threads` loops on `listener`; nothing runs until `start`.
    init(
        listener: Int32, threads: Int, router: Router, limits: ServerLimits, registry: ConnectionRegistry, logger: Logger,
        handOver: @escaping @Sendable (HandOver) -> Void
    ) throws {
        // Non-blocking: more than one loop may wake for one connection; the others must find the
        // queue empty, not wait in accept4 for the next one.
        let flags = fcntl(listener, F_GETFL)
        guard flags >= 0, fcntl(listener, F_SETFL, flags | O_NONBLOCK) == 0 else { throw SystemError("fcntl(O_NONBLOCK) on the listening socket") }
        var loops: [FastLoopControl] = []
        do {
            for _ in 0..<max(1, threads) { loops.append(try FastLoopControl()) }
        } catch {
            for loop in loops { loop.closeDescriptors() }
            throw error
        }
        self.loops = loops
        setup = FastLoop.Setup(
            listener: listener, router: router, limits: limits, registry: registry, logger: logger, handOver: handOver, loops: loops)
    }

    /// Starts the threads; connections are accepted from now on.
    func start() throws {
        for (index, control) in loops.enumerated() {
            finished.enter()
            let setup = self.setup
            let finished = self.finished
            do {
                try SystemThread.detach(name: "broker-accept-\(index)", stackSize: 1024 * 1024) {
                    FastLoop(setup: setup, control: control).run()
                    control.ended()
                    finished.leave()
                }
            } catch {
                finished.leave()
                throw error
            }
        }
    }

    /// Returns once every loop has come round (the watchdog's question: is anyone stuck?).
    func respond() async {
        for loop in loops { await loop.ping() }
    }

    /// Stops accepting and closes the connections the fast path holds (each is idle or has half a
    /// request head: its answers are written synchronously); returns when every thread has ended.
    func stop() async {
        for loop in loops { loop.stop() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            finished.notify(queue: .global()) { continuation.resume() }
        }
        for loop in loops { loop.closeDescriptors() }
    }
}

/// What other threads may do to a fast-path loop: wake it to close a connection (eviction) or to
/// stop. Owns the loop's epoll and wake-up descriptors.
final class FastLoopControl: Sendable {
    let epoll: Int32
    let wake: Int32
    /// The connections this loop serves, for the others to see (`FastLoop.acceptOne`).
    let load = Atomic<Int>(0)
    private struct Requests {
        var evictions: [UInt64] = []
        var adoptions: [(Int32, PeerCredentials)] = []
        var connections: [(UInt64, Result<WireConnection, ForwardingFailure>)] = []
        var pings: [CheckedContinuation<Void, Never>] = []
        var stopping = false
        var stopped = false
    }
    private let requests = NIOLockedValueBox(Requests())

    init() throws {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else { throw SystemError("epoll_create1") }
        wake = CSystemShims_eventFD()
        guard wake >= 0 else {
            let error = SystemError("eventfd")
            close(epoll)
            throw error
        }
    }

    /// Asks the loop to close connection `id` (the connection limit was reached).
    func evict(_ id: UInt64) {
        requests.withLockedValue { $0.evictions.append(id) }
        signal()
    }

    func stop() {
        requests.withLockedValue { $0.stopping = true }
        signal()
    }

    /// A connection another loop accepted, for this one to serve.
    func adopt(_ descriptor: Int32, peer: PeerCredentials) {
        let stopped = requests.withLockedValue { requests in
            if !requests.stopping { requests.adoptions.append((descriptor, peer)) }
            return requests.stopping
        }
        if stopped { close(descriptor) } else { signal() }
    }

    /// A connection to Altinn made for the gateway call holding `ticket`, or its failure.
    func deliver(_ ticket: UInt64, _ result: Result<WireConnection, ForwardingFailure>) {
        let stopped = requests.withLockedValue { requests in
            if !requests.stopped { requests.connections.append((ticket, result)) }
            return requests.stopped
        }
        if stopped, case .success(let connection) = result { connection.close() }
        signal()
    }

    /// Returns when the loop has next come round its wake-ups (at once if it has ended).
    func ping() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ended = requests.withLockedValue { requests in
                if !requests.stopped { requests.pings.append(continuation) }
                return requests.stopped
            }
            if ended { continuation.resume() } else { signal() }
        }
    }

    /// Evictions asked for since the last call, connections made, and whether the loop must
    /// stop; answers pings.
    func take() -> (
        evictions: [UInt64], adoptions: [(Int32, PeerCredentials)], connections: [(UInt64, Result<WireConnection, ForwardingFailure>)], stopping: Bool
    ) {
        let (evictions, adoptions, connections, pings, stopping) = requests.withLockedValue { requests in
            defer {
                requests.evictions = []
                requests.adoptions = []
                requests.connections = []
                requests.pings = []
            }
            return (requests.evictions, requests.adoptions, requests.connections, requests.pings, requests.stopping)
        }
        for ping in pings { ping.resume() }
        return (evictions, adoptions, connections, stopping)
    }

    /// The loop has ended: pings from now on are answered at once.
    func ended() {
        let (pings, connections, adoptions) = requests.withLockedValue { requests in
            requests.stopped = true
            defer {
                requests.pings = []
                requests.connections = []
                requests.adoptions = []
            }
            return (requests.pings, requests.connections, requests.adoptions)
        }
        for ping in pings { ping.resume() }
        for case (_, .success(let connection)) in connections { connection.close() }
        for (descriptor, _) in adoptions { close(descriptor) }
    }

    private func signal() {
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    func closeDescriptors() {
        close(epoll)
        close(wake)
    }
}

/// One fast-path thread's state; touched only by that thread.
final class FastLoop {
    /// What every loop shares.
    struct Setup: Sendable {
        var listener: Int32
        var router: Router
        var limits: ServerLimits
        var registry: ConnectionRegistry
        var logger: Logger
        var handOver: @Sendable (FastServer.HandOver) -> Void
        /// Every loop's control (this one's among them): new connections go to the least busy.
        var loops: [FastLoopControl]
    }

    /// A connection this loop serves (kept by its descriptor in `connections`).
    struct Connection {
        var peer: PeerCredentials
        var id: UInt64
        /// Closed unless a request head is complete by then: `headTimeout` after connect or the
        /// last answer (slowloris; also the idle timeout of a kept-alive connection).
        var deadline: UInt64
        /// Bytes of a request head not complete yet, or read while a gateway call is answered.
        var pending: [UInt8] = []
        /// The gateway call being answered on this connection.
        var exchange: FastExchange?
    }

    private static let listenerTag = UInt64.max
    private static let wakeTag = UInt64.max - 1
    private static let readSize = 64 * 1024

    let setup: FastLoop.Setup
    let control: FastLoopControl
    private let scanner: SimpleRequestScanner
    let headTimeout: UInt64
    var connections: [Int32: Connection] = [:]
    let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: FastLoop.readSize, alignment: 16)
    var output: [UInt8] = []
    /// Accepting stopped until then (out of descriptors), or nil.
    private var acceptPausedUntil: UInt64?
    private var lastAcceptWarning: UInt64 = 0
    var nextSweep: UInt64 = 0
    /// The gateway's calls and kept connections (`FastGateway.swift`).
    let gateway: FastGateway
    /// Stopping: no new connection or request; the gateway calls under way are answered first.
    var stopping = false

    init(setup: Setup, control: FastLoopControl) {
        self.setup = setup
        self.control = control
        scanner = SimpleRequestScanner(headerBytes: setup.limits.headerBytes, targetBytes: setup.limits.uriBytes)
        headTimeout = UInt64(max(0, setup.limits.headTimeout.nanoseconds))
        gateway = FastGateway(limits: setup.limits)
        output.reserveCapacity(4096)
    }

    deinit {
        readBuffer.deallocate()
    }

    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    func run() {
        guard CSystemShims_epollAdd(control.epoll, control.wake, CSystemShims_EPOLLIN, Self.wakeTag) == 0,
            CSystemShims_epollAdd(control.epoll, setup.listener, CSystemShims_EPOLLIN | CSystemShims_EPOLLEXCLUSIVE, Self.listenerTag) == 0
        else {
            setup.logger.critical("the socket's accepting thread cannot watch its descriptors", metadata: ["error": "\(SystemError("epoll_ctl"))"])
            return
        }
        var tags = [UInt64](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        while true {
            // Deadlines are checked once a second: a connection outlives its deadline by at most
            // that; a gateway call's every tenth of a second, so that its 504 comes on time.
            let timeout: Int32 = gateway.busy ? 100 : connections.isEmpty && acceptPausedUntil == nil ? -1 : 1000
            let count = tags.withUnsafeMutableBufferPointer { tags in
                events.withUnsafeMutableBufferPointer { events in
                    CSystemShims_epollWait(control.epoll, tags.baseAddress, events.baseAddress, timeout)
                }
            }
            if count < 0 && errno != EINTR {
                setup.logger.critical("the socket's accepting thread stopped", metadata: ["error": "\(SystemError("epoll_wait"))"])
                break
            }
            var stop = false
            for index in 0..<max(0, Int(count)) {
                switch tags[index] {
                case Self.listenerTag:
                    acceptOne()
                case Self.wakeTag:
                    var value: UInt64 = 0
                    _ = read(control.wake, &value, 8)
                    let (evictions, adoptions, made, stopAsked) = control.take()
                    for id in evictions { evict(id) }
                    for (descriptor, peer) in adoptions { serveNew(descriptor, peer: peer) }
                    for (ticket, result) in made { connected(ticket, result) }
                    stop = stop || stopAsked
                case let tag where tag & FastGateway.upstreamTag != 0:
                    upstreamEvent(Int32(truncatingIfNeeded: tag & 0xFFFF_FFFF), events[index])
                default:
                    clientEvent(Int32(truncatingIfNeeded: tags[index]), events[index])
                }
            }
            if stop && !stopping { beginStopping() }
            // Stopping ends the loop once every gateway call's answer is out.
            if stopping && !connections.values.contains(where: { $0.exchange != nil }) { break }
            let now = Self.now()
            if gateway.busy && now >= gateway.nextCheck {
                checkGatewayDeadlines(now: now)
                gateway.nextCheck = now + 100_000_000
            }
            if now >= nextSweep {
                sweep(now: now)
                nextSweep = now + 1_000_000_000
            }
        }
        for descriptor in Array(connections.keys) { closeConnection(descriptor) }
        for (connection, _) in gateway.idleByDescriptor.values { connection.close() }
        gateway.pools = [:]
        gateway.idleByDescriptor = [:]
    }

    /// No more connections or requests; the connections with no gateway call under way close
    /// now, the others once their answer is out.
    private func beginStopping() {
        stopping = true
        _ = CSystemShims_epollRemove(control.epoll, setup.listener)
        acceptPausedUntil = nil
        for (descriptor, connection) in connections where connection.exchange == nil { closeConnection(descriptor) }
    }

    // MARK: - Accepting

    /// Accepts one connection: with one per wake-up, a burst of connections spreads over the
    /// loops, and no accept4 is spent on finding the queue empty.
    private func acceptOne() {
        let descriptor = CSystemShims_acceptNonBlocking(setup.listener)
        guard descriptor >= 0 else {
            switch errno {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO:
                return
            case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                // The queue stays readable: stop watching it for a moment instead of spinning.
                let now = Self.now()
                if now - lastAcceptWarning > 10_000_000_000 || lastAcceptWarning == 0 {
                    lastAcceptWarning = now
                    setup.logger.warning("cannot accept connections: out of descriptors or memory", metadata: ["error": "\(SystemError("accept4"))"])
                }
                _ = CSystemShims_epollRemove(control.epoll, setup.listener)
                acceptPausedUntil = now + 100_000_000
                nextSweep = min(nextSweep, acceptPausedUntil!)
            default:
                setup.logger.error("accepting a connection failed", metadata: ["error": "\(SystemError("accept4"))"])
            }
            return
        }
        var credentials = RawPeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max)
        var length = socklen_t(MemoryLayout<RawPeerCredentials>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0 else {
            close(descriptor)
            return
        }
        let peer = PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
        // Whichever loop epoll wakes accepts: when 64 clients connect at once, one loop can get
        // two thirds of them and be the bottleneck while the other idles. A loop two or more
        // connections ahead of the least busy hands the new one over (once, at accept).
        let mine = control.load.load(ordering: .relaxed)
        if let least = setup.loops.min(by: { $0.load.load(ordering: .relaxed) < $1.load.load(ordering: .relaxed) }), least !== control,
            least.load.load(ordering: .relaxed) + 2 <= mine
        {
            least.load.add(1, ordering: .relaxed)
            least.adopt(descriptor, peer: peer)
            return
        }
        control.load.add(1, ordering: .relaxed)
        serveNew(descriptor, peer: peer)
    }

    /// Serves a new connection (accepted here, or by another loop for this one; counted in
    /// `load` already).
    private func serveNew(_ descriptor: Int32, peer: PeerCredentials) {
        guard !stopping, CSystemShims_epollAdd(control.epoll, descriptor, CSystemShims_EPOLLIN, UInt64(descriptor)) == 0 else {
            close(descriptor)
            control.load.subtract(1, ordering: .relaxed)
            return
        }
        let id = setup.registry.opened(by: .fast(control))
        connections[descriptor] = Connection(peer: peer, id: id, deadline: Self.now() + headTimeout)
        // A client writes its request right after connecting: it is usually there already, and
        // reading it now saves a round through epoll_wait.
        readable(descriptor)
    }

    private func sweep(now: UInt64) {
        if let paused = acceptPausedUntil, paused <= now, !stopping {
            acceptPausedUntil = nil
            _ = CSystemShims_epollAdd(control.epoll, setup.listener, CSystemShims_EPOLLIN | CSystemShims_EPOLLEXCLUSIVE, Self.listenerTag)
        }
        var expired: [Int32] = []
        for (descriptor, connection) in connections where connection.deadline <= now { expired.append(descriptor) }
        for descriptor in expired { closeConnection(descriptor) }
    }

    private func evict(_ id: UInt64) {
        guard let descriptor = connections.first(where: { $0.value.id == id })?.key else { return }
        closeConnection(descriptor)
    }

    func closeConnection(_ descriptor: Int32) {
        if let exchange = connections[descriptor]?.exchange {
            // abort closes the connection itself, once the call is let go.
            return abort(exchange)
        }
        guard let connection = connections.removeValue(forKey: descriptor) else { return }
        close(descriptor)
        control.load.subtract(1, ordering: .relaxed)
        setup.registry.closed(connection.id)
    }

    // MARK: - Requests

    private func clientEvent(_ descriptor: Int32, _ events: UInt32) {
        if events & CSystemShims_EPOLLOUT != 0, let exchange = connections[descriptor]?.exchange {
            flushToClient(exchange)
            if events & CSystemShims_EPOLLIN == 0 { return }
        }
        readable(descriptor)
    }

    /// One read per readiness (epoll is level-triggered: what is left wakes the loop again).
    private func readable(_ descriptor: Int32) {
        guard connections[descriptor] != nil else { return }
        var count: Int
        repeat {
            count = read(descriptor, readBuffer.baseAddress, readBuffer.count)
        } while count < 0 && errno == EINTR
        if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
        guard count > 0 else {
            closeConnection(descriptor)
            return
        }
        if connections[descriptor]!.exchange != nil {
            // The next request, while a gateway call is answered: served after it. A caller
            // sending on and on without reading is cut off.
            guard connections[descriptor]!.pending.count + count <= setup.limits.headerBytes + setup.limits.bodyBytes else {
                closeConnection(descriptor)
                return
            }
            connections[descriptor]!.pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
            return
        }
        if connections[descriptor]!.pending.isEmpty {
            serve(descriptor, UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
        } else {
            var input = connections[descriptor]!.pending
            connections[descriptor]!.pending = []
            input.append(contentsOf: UnsafeRawBufferPointer(rebasing: readBuffer[0..<count]))
            input.withUnsafeBytes { serve(descriptor, $0) }
        }
    }

    /// Answers every whole request in `input` that the fast path can, in order; keeps a partial
    /// head for the next read; hands the connection over at the first request it cannot answer.
    func serve(_ descriptor: Int32, _ input: UnsafeRawBufferPointer) {
        let peer = connections[descriptor]!.peer
        // The answers to one read's pipelined requests can reach megabytes: not kept afterwards.
        if output.capacity > 64 * 1024 { output = [] }
        output.removeAll(keepingCapacity: true)
        var offset = 0
        var close = false
        var handOver = false
        scanning: while offset < input.count {
            switch scanner.scan(UnsafeRawBufferPointer(rebasing: input[offset...])) {
            case .incomplete:
                break scanning
            case .other:
                handOver = true
                break scanning
            case .gateway(let head):
                // Alone in what was read, whole, with no earlier answer still to write: anything
                // else goes to NIO.
                guard output.isEmpty, !stopping, input.count - offset == head.length + head.bodyLength else {
                    handOver = true
                    break scanning
                }
                switch startGateway(descriptor, head, bytes: UnsafeRawBufferPointer(rebasing: input[offset...]), peer: peer) {
                case .started:
                    return
                case .handOver:
                    handOver = true
                    break scanning
                case .answered(let response):
                    response.append(keepAlive: head.keepAlive, to: &output)
                    offset += head.length + head.bodyLength
                    if !head.keepAlive {
                        close = true
                        break scanning
                    }
                }
            case .simple(let request):
                guard let response = setup.router.handleImmediately(BrokerRequest(request), peer: peer) else {
                    handOver = true
                    break scanning
                }
                response.append(keepAlive: request.keepAlive, to: &output)
                offset += request.length
                if !request.keepAlive {
                    close = true
                    break scanning
                }
            }
        }
        var written = 0
        if !output.isEmpty {
            written = output.withUnsafeBytes { Self.writeSome(descriptor, $0) }
            if written < 0 {
                closeConnection(descriptor)
                return
            }
        }
        if written < output.count || handOver {
            // NIO writes the rest as the reader takes it (and closes after it if the last answer
            // said so: then there is no input to go on with).
            giveUp(descriptor, input: close ? [] : Array(input[offset...]), output: Array(output[written...]), closeAfterOutput: close)
            return
        }
        if close {
            closeConnection(descriptor)
            return
        }
        if !output.isEmpty { connections[descriptor]!.deadline = Self.now() + headTimeout }
        if offset < input.count { connections[descriptor]!.pending = Array(input[offset...]) }
    }

    /// Hands the connection to NIO: it no longer belongs to this loop.
    func giveUp(_ descriptor: Int32, input: [UInt8], output: [UInt8], closeAfterOutput: Bool = false, refusedToken: IssuedToken? = nil) {
        guard let connection = connections.removeValue(forKey: descriptor) else { return }
        _ = CSystemShims_epollRemove(control.epoll, descriptor)
        control.load.subtract(1, ordering: .relaxed)
        setup.handOver(
            FastServer.HandOver(
                descriptor: descriptor, peer: connection.peer, id: connection.id, input: input, output: output, closeAfterOutput: closeAfterOutput,
                refusedToken: refusedToken))
    }

    /// Writes as much of `bytes` as the socket takes now; -1 when the connection is gone.
    static func writeSome(_ descriptor: Int32, _ bytes: UnsafeRawBufferPointer) -> Int {
        var written = 0
        while written < bytes.count {
            // MSG_NOSIGNAL: a reader that has gone is an EPIPE here, not a SIGPIPE for the daemon.
            let count = send(descriptor, bytes.baseAddress! + written, bytes.count - written, Int32(MSG_NOSIGNAL))
            if count > 0 {
                written += count
            } else if count < 0 && errno == EINTR {
                continue
            } else if count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                break
            } else {
                return -1
            }
        }
        return written
    }
}
