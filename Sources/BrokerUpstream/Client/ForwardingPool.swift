import NIOCore

/// Where a forwarded call goes: the connections of a pool are kept by it.
struct ForwardingEndpoint: Hashable, Sendable {
    /// `https`: TLS over the connection (through the proxy's tunnel, when there is one).
    var secure: Bool
    /// The host as the URL has it (an IPv6 address without its brackets).
    var host: String
    var port: Int
    /// Through the configured proxy's CONNECT tunnel.
    var proxied: Bool

    /// The `Host` header: the port only when it is not the scheme's own.
    var authority: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// `https://host[:port]/path?query` as the endpoint and the request target; nil for a URL
    /// that is not one (the platform's base URL is checked when the configuration is loaded).
    static func parse(_ url: String, proxied: Bool) -> (ForwardingEndpoint, target: String)? {
        let secure: Bool
        let rest: Substring
        if url.hasPrefix("https://") {
            (secure, rest) = (true, url.dropFirst(8))
        } else if url.hasPrefix("http://") {
            (secure, rest) = (false, url.dropFirst(7))
        } else {
            return nil
        }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        var target = String(rest[authorityEnd...])
        if target.isEmpty || target.hasPrefix("?") { target = "/" + target }
        var host = authority
        var port = secure ? 443 : 80
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let number = Int(after.dropFirst()) else { return nil }
                port = number
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let number = Int(authority[authority.index(after: colon)...]) else { return nil }
            host = authority[..<colon]
            port = number
        }
        guard !host.isEmpty, (1...65535).contains(port), !host.contains("@") else { return nil }
        return (ForwardingEndpoint(secure: secure, host: String(host), port: port, proxied: proxied), target)
    }
}

/// The kept-alive connections of one event loop, by endpoint: used only on that loop, so a call
/// takes one without a lock. The most recently used is taken first (its TLS session and TCP
/// window are warm); one idle longer than `idleLimit` is closed instead, before Altinn's own
/// keep-alive limit closes it under a request. (`@unchecked Sendable`: it crosses to its loop
/// only, and is used there alone.)
final class ForwardingPool: @unchecked Sendable {
    let loop: any EventLoop
    private var idle: [ForwardingEndpoint: [ForwardingConnection]] = [:]
    /// Every open connection, idle or carrying a call: closed when the daemon stops.
    private var open: [ObjectIdentifier: ForwardingConnection] = [:]
    private var shutDown = false

    /// Idle connections kept per endpoint on one loop.
    static let idleKept = 64
    /// How long a connection may sit idle and still be used.
    static let idleLimit = TimeAmount(UpstreamClient.forwardingIdleReuse)

    init(loop: any EventLoop) {
        self.loop = loop
    }

    /// An idle connection to `endpoint`, if one is kept.
    func take(_ endpoint: ForwardingEndpoint) -> ForwardingConnection? {
        loop.preconditionInEventLoop()
        let now = loop.now
        while let connection = idle[endpoint]?.popLast() {
            if connection.isUsable && connection.idleSince + Self.idleLimit > now { return connection }
            connection.close()
        }
        return nil
    }

    /// A new connection, from now until it closes.
    func opened(_ connection: ForwardingConnection) {
        open[ObjectIdentifier(connection)] = connection
    }

    /// A connection whose answer has been read: kept for the next call, or closed.
    func release(_ connection: ForwardingConnection) {
        loop.preconditionInEventLoop()
        guard !shutDown, idle[connection.endpoint, default: []].count < Self.idleKept else {
            connection.close()
            return
        }
        connection.idleSince = loop.now
        idle[connection.endpoint, default: []].append(connection)
    }

    /// A connection that closed (Altinn's keep-alive limit, a reset, its call's end).
    func closed(_ connection: ForwardingConnection) {
        open[ObjectIdentifier(connection)] = nil
        idle[connection.endpoint]?.removeAll { $0 === connection }
    }

    /// Closes every kept connection; none is kept after.
    func close() {
        loop.preconditionInEventLoop()
        shutDown = true
        idle = [:]
        for connection in open.values { connection.close() }
    }

    var isShutDown: Bool { shutDown }
}
