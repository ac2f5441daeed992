import BrokerConfig
import BrokerPOSIX
import BrokerTLS
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

/// The gateway's calls as the socket's fast path sends them: the request's bytes, and new
/// connections made off the loop. One per upstream client (per trust and proxy setting), beside
/// its NIO client, with the same trust (the system's roots and `ca_file`), proxy and connect
/// timeout.
///
/// A connection is made blocking, on a thread of its own (`connect`): DNS has no non-blocking
/// call in libc, and a CONNECT through the proxy and a TLS handshake are a few round trips once
/// per connection. Everything after is the loop's, non-blocking (`WireConnection`).
package final class WireClient: Sendable {
    let caFile: String?
    let proxy: ProxySettings
    let connectTimeout: Duration
    /// The TLS context, made at the first https call: the system's roots read whole are a
    /// megabyte of memory, not spent by a daemon whose gateway is idle or plain HTTP.
    private let context = NIOLockedValueBox<TLSClientContext??>(nil)

    init(caFile: String?, proxy: ProxySettings, connectTimeout: Duration) {
        self.caFile = caFile
        self.proxy = proxy
        self.connectTimeout = connectTimeout
    }

    /// TLS to Altinn; nil when the trust could not be read (the NIO client, which read it, then
    /// sends every call).
    var tls: TLSClientContext? {
        context.withLockedValue { context in
            if let made = context { return made }
            let made = try? TLSClientContext(caFile: caFile)
            context = .some(made)
            return made
        }
    }

    /// The endpoint of an Altinn platform's base URL, and the path the base holds (put before
    /// every call's path); nil for a URL the fast path does not send to (it has no TLS for it).
    package func endpoint(base: String) -> (WireEndpoint, basePath: String)? {
        guard let (target, path) = ForwardingEndpoint.parse(base, proxied: false), !target.secure || tls != nil else { return nil }
        // (tls, asked only for https, makes the context then.)
        var endpoint = target
        endpoint.proxied = proxy.proxy(forHost: endpoint.host, port: endpoint.port) != nil
        // parse gives "/" for a base without a path: the call's own path starts with one.
        let basePath = path == "/" && !base.hasSuffix("/") ? "" : path
        return (WireEndpoint(base: endpoint), basePath)
    }

    /// A call's bytes on the wire to `endpoint`, for `basePath` (the base URL's) then `target` (the
    /// call's path and query), with `token`.
    package func request(_ call: ForwardedRequest, to endpoint: WireEndpoint, basePath: String, target: String, token: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512 + call.body.readableBytes)
        bytes.append(contentsOf: call.method.rawValue.utf8)
        bytes.append(0x20)
        bytes.append(contentsOf: basePath.utf8)
        bytes.append(contentsOf: target.utf8)
        bytes.append(contentsOf: " HTTP/1.1\r\nHost: ".utf8)
        bytes.append(contentsOf: endpoint.authority.utf8)
        bytes.append(contentsOf: "\r\n".utf8)
        for (name, value) in call.headers where !name.utf8.elementsEqual("Authorization".utf8) {
            bytes.append(contentsOf: name.utf8)
            bytes.append(contentsOf: ": ".utf8)
            bytes.append(contentsOf: value.utf8)
            bytes.append(contentsOf: "\r\n".utf8)
        }
        bytes.append(contentsOf: "Authorization: Bearer ".utf8)
        bytes.append(contentsOf: token.utf8)
        bytes.append(contentsOf: "\r\n".utf8)
        // As the NIO client frames it: a length for every body, and for the methods that have one.
        if call.body.readableBytes > 0 || call.method == .POST || call.method == .PUT || call.method == .PATCH {
            bytes.append(contentsOf: "Content-Length: ".utf8)
            bytes.append(contentsOf: String(call.body.readableBytes).utf8)
            bytes.append(contentsOf: "\r\n".utf8)
        }
        bytes.append(contentsOf: "\r\n".utf8)
        call.body.withUnsafeReadableBytes { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// A new connection to `endpoint`: TCP (to the proxy, and its tunnel), then TLS. Blocks for
    /// at most the connect timeout (and DNS's own); called off the loop. Fails in the words the
    /// NIO client's failures are given.
    package func connect(to endpoint: WireEndpoint) throws(ForwardingFailure) -> WireConnection {
        let target = endpoint.base
        let server = target.proxied ? proxy.server : nil
        let deadline = ContinuousClock.now + connectTimeout
        let descriptor: Int32
        do {
            descriptor = try Self.tcpConnect(host: server?.host ?? target.host, port: server?.port ?? target.port, by: deadline)
        } catch {
            if let server { throw .unreachable("Altinn through the proxy \(server): the proxy could not be reached: \(error.reason)") }
            throw .unreachable("Altinn could not be reached (connecting to \(target.host):\(target.port)): \(error.reason)")
        }
        do throws(Refusal) {
            if let server { try Self.tunnel(descriptor, through: server, to: target, by: deadline) }
            var stream: TLSStream?
            if target.secure {
                guard let tls else { throw Refusal("Altinn could not be reached: its TLS trust could not be read") }
                let made: TLSStream
                do {
                    made = try TLSStream(context: tls, descriptor: descriptor, host: target.host)
                } catch {
                    throw Refusal("Altinn could not be reached: \(error)")
                }
                handshake: while true {
                    switch made.handshake() {
                    case .done: break handshake
                    case .wantRead: try Self.wait(descriptor, for: Int16(POLLIN), by: deadline, doing: "the TLS handshake")
                    case .wantWrite: try Self.wait(descriptor, for: Int16(POLLOUT), by: deadline, doing: "the TLS handshake")
                    case .closed: throw Refusal("Altinn could not be reached: the connection closed during the TLS handshake")
                    case .failed(let reason): throw Refusal("Altinn could not be reached: \(reason)")
                    }
                }
                stream = made
            }
            return WireConnection(descriptor: descriptor, tls: stream)
        } catch {
            _ = Glibc.close(descriptor)
            // Not reached within the connect timeout is unreachable (502), as for the NIO client:
            // `timeout_seconds` (504) is Altinn's time to answer.
            throw .unreachable(error.reason)
        }
    }

    /// Why a connection could not be made.
    struct Refusal: Error {
        var reason: String
        /// The connect timeout has passed: no further address is tried.
        var deadlinePassed = false
        init(_ reason: String, deadlinePassed: Bool = false) {
            self.reason = reason
            self.deadlinePassed = deadlinePassed
        }
    }

    /// A non-blocking TCP connection to the first address of `host` that answers.
    private static func tcpConnect(host: String, port: Int, by deadline: ContinuousClock.Instant) throws(Refusal) -> Int32 {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_ADDRCONFIG
        var found: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &found)
        guard status == 0, let first = found else { throw Refusal("the name \(host) could not be resolved: \(String(cString: gai_strerror(status)))") }
        defer { freeaddrinfo(first) }
        var last = Refusal("no address for \(host)")
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let address = next {
            next = address.pointee.ai_next
            let descriptor = socket(address.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard descriptor >= 0 else {
                last = Refusal(SystemError("socket").description)
                continue
            }
            var one: Int32 = 1
            _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
            do throws(Refusal) {
                if Glibc.connect(descriptor, address.pointee.ai_addr, address.pointee.ai_addrlen) != 0 {
                    guard errno == EINPROGRESS else { throw Refusal(String(cString: strerror(errno))) }
                    try wait(descriptor, for: Int16(POLLOUT), by: deadline, doing: "connecting")
                    var failure: Int32 = 0
                    var length = socklen_t(MemoryLayout<Int32>.size)
                    _ = getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &failure, &length)
                    guard failure == 0 else { throw Refusal(String(cString: strerror(failure))) }
                }
                return descriptor
            } catch {
                _ = Glibc.close(descriptor)
                last = error
                if error.deadlinePassed { throw error }
            }
        }
        throw last
    }

    /// The CONNECT through the proxy, with the proxy's refusal in its own words.
    private static func tunnel(_ descriptor: Int32, through server: ProxySettings.Server, to target: ForwardingEndpoint, by deadline: ContinuousClock.Instant)
        throws(Refusal)
    {
        let request = Array(ProxyConnect.request(server, host: target.host, port: target.port).utf8)
        var written = 0
        while written < request.count {
            let count = request.withUnsafeBytes { send(descriptor, $0.baseAddress! + written, $0.count - written, Int32(MSG_NOSIGNAL)) }
            if count > 0 {
                written += count
            } else if count < 0 && (errno == EAGAIN || errno == EINTR) {
                try wait(descriptor, for: Int16(POLLOUT), by: deadline, doing: "the proxy's CONNECT")
            } else {
                throw Refusal("Altinn through the proxy \(server): the proxy closed the connection")
            }
        }
        // The proxy's answer, read a byte at a time: nothing of the tunnel may be read past it.
        var answer: [UInt8] = []
        var byte: UInt8 = 0
        while !answer.ends(with: [13, 10, 13, 10]) {
            guard answer.count < 16 * 1024 else { throw Refusal("Altinn through the proxy \(server): the proxy's answer to the CONNECT is too long") }
            let count = recv(descriptor, &byte, 1, 0)
            if count == 1 {
                answer.append(byte)
            } else if count < 0 && (errno == EAGAIN || errno == EINTR) {
                try wait(descriptor, for: Int16(POLLIN), by: deadline, doing: "the proxy's answer to the CONNECT")
            } else {
                throw Refusal("Altinn through the proxy \(server): the proxy closed the connection without answering the CONNECT")
            }
        }
        let line = Array(answer.prefix { $0 != 13 })
        guard let parsed = ProxyConnect.parse(line) else {
            throw Refusal("Altinn through the proxy \(server): the proxy's answer to the CONNECT is not HTTP")
        }
        guard (200..<300).contains(parsed.status) else {
            throw Refusal("Altinn through the proxy \(server): \(parsed.refusal(by: server, of: "\(target.host):\(target.port)"))")
        }
    }

    /// Waits until `descriptor` is ready for `events`, or the deadline.
    private static func wait(_ descriptor: Int32, for events: Int16, by deadline: ContinuousClock.Instant, doing what: String) throws(Refusal) {
        while true {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw Refusal("Altinn could not be reached: \(what) took longer than the connect timeout", deadlinePassed: true) }
            var poller = pollfd(fd: descriptor, events: events, revents: 0)
            let milliseconds = Int32(min(Int64(Int32.max), left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1))
            let ready = poll(&poller, 1, milliseconds)
            if ready > 0 { return }
            if ready < 0 && errno != EINTR { throw Refusal(SystemError("poll").description) }
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && self[(count - suffix.count)...].elementsEqual(suffix)
    }
}
