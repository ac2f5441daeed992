package import BrokerTLS

#if canImport(Glibc)
    import Glibc
#endif

/// Where a connection of the fast path's goes: Altinn's scheme, host and port, and whether
/// through the proxy.
package struct WireEndpoint: Sendable {

    /// The `Host` header.
    package var authority: String
    let base: ForwardingEndpoint

    init(base: ForwardingEndpoint) {
        self.base = base
        authority = base.authority
    }
}

/// A connection of the fast path's to Altinn, made (TCP, the proxy's tunnel, TLS) by
/// `WireClient.connect` and from then on used by one fast-path loop, non-blocking: it reads and
/// writes when the loop's epoll says it can. Owns its descriptor.
package final class WireConnection: @unchecked Sendable {
    /// The socket, for the loop's epoll set.
    package let descriptor: Int32
    private let tls: TLSStream?

    init(descriptor: Int32, tls: TLSStream?) {
        self.descriptor = descriptor
        self.tls = tls
    }

    /// Reads what has come, up to `buffer.count` bytes.
    package func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSProgress {
        if let tls { return tls.read(into: buffer) }
        while true {
            let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
            if count > 0 { return .done(count) }
            if count == 0 { return .closed }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wantRead
            case ECONNRESET: return .closed
            default: return .failed("reading: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Writes as much of `bytes` as the connection takes now.
    package func write(_ bytes: UnsafeRawBufferPointer) -> TLSProgress {
        if let tls { return tls.write(bytes) }
        guard !bytes.isEmpty else { return .done(0) }
        while true {
            // MSG_NOSIGNAL: Altinn gone is an EPIPE here, not a SIGPIPE for the daemon.
            let count = send(descriptor, bytes.baseAddress, bytes.count, Int32(MSG_NOSIGNAL))
            if count >= 0 { return .done(count) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wantWrite
            case EPIPE, ECONNRESET: return .closed
            default: return .failed("writing: \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Closes the socket; the connection is not used again.
    package func close() {
        _ = Glibc.close(descriptor)
    }
}
