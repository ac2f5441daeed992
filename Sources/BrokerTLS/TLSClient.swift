// A module of its own, which sees BoringSSL's headers and not OpenSSL's: where both are visible
// (any module that imports BrokerCrypto loads COpenSSL), a name both declare, such as
// X509_VERIFY_PARAM_set1_ip_asc, was bound to OpenSSL's libcrypto, whose code then wrote into
// BoringSSL's structures and corrupted the heap.
@preconcurrency import CNIOBoringSSL

#if canImport(Glibc)
    import Glibc
#endif

/// The trust and protocol settings of the fast path's TLS connections to one environment's
/// Altinn: the system's roots plus, if given, the PEM certificates in `ca_file` (as the NIO
/// client trusts), TLS 1.2 at least, the server's name checked against its certificate.
///
/// The TLS is BoringSSL's, the library NIOSSL is built on and the daemon already holds: the fast
/// path's thread sends a gateway call and reads its answer without leaving its own epoll loop,
/// and NIOSSL's TLS lives inside a NIO channel. (OpenSSL's libssl would be a second TLS library,
/// 0.7 MB more of the image, and its roots read at start a megabyte more of the idle daemon.)
package final class TLSClientContext: @unchecked Sendable {
    // Immutable once made; an SSL_CTX may be shared by threads making sessions from it.
    fileprivate let context: OpaquePointer

    /// Where Linux distributions keep their roots, in NIOSSL's order (Debian's first).
    static let systemRoots = [
        "/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem", "/etc/pki/tls/cacert.pem",
        "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem", "/etc/ssl/cert.pem",
    ]

    /// A context trusting the system's roots and the certificates in `caFile`.
    package init(caFile: String?) throws(TLSSetupError) {
        guard let context = SSL_CTX_new(TLS_method()) else { throw TLSSetupError("SSL_CTX_new") }
        self.context = context
        guard SSL_CTX_set_min_proto_version(context, UInt16(TLS1_2_VERSION)) == 1 else { throw TLSSetupError("TLS 1.2 as the least version") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // The system's roots may be missing (a minimal image): only ca_file is then trusted.
        if let roots = Self.systemRoots.first(where: { access($0, R_OK) == 0 }) { _ = SSL_CTX_load_verify_locations(context, roots, nil) }
        ERR_clear_error()
        if let caFile, SSL_CTX_load_verify_locations(context, caFile, nil) != 1 {
            throw TLSSetupError("the certificates in \(caFile) could not be read")
        }
    }

    deinit {
        SSL_CTX_free(context)
    }
}

/// How far a non-blocking TLS operation got.
package enum TLSProgress: Equatable, Sendable {
    /// Done: the bytes read or written (0 for a finished handshake).
    case done(Int)
    /// Try again when the socket is readable.
    case wantRead
    /// Try again when the socket is writable.
    case wantWrite
    /// The peer closed the connection.
    case closed
    /// Failed, in words (OpenSSL's, never the data).
    case failed(String)
}

/// One TLS client connection over a connected, non-blocking socket it does not own (the
/// descriptor is closed by its owner, after this is gone). Used by one thread at a time: made
/// and shaken hands with by a connecting thread, then handed to one loop.
package final class TLSStream: @unchecked Sendable {
    private let ssl: OpaquePointer
    /// Keeps the context alive as long as the session.
    private let context: TLSClientContext

    /// A session for `host` (its name is sent (SNI) and checked against the certificate) on
    /// `descriptor`.
    package init(context: TLSClientContext, descriptor: Int32, host: String) throws(TLSSetupError) {
        guard let ssl = SSL_new(context.context) else { throw TLSSetupError("SSL_new") }
        self.ssl = ssl
        self.context = context
        // Partial writes, and a write buffer that may move between retries (a Swift array's).
        _ = SSL_set_mode(ssl, UInt32(SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER))
        guard SSL_set_fd(ssl, descriptor) == 1 else { throw TLSSetupError("TLS session for \(host)") }
        if Self.isAddress(host) {
            // An address: checked against the certificate's IP addresses; SNI carries names only.
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else { throw TLSSetupError("TLS session for \(host)") }
        } else {
            guard SSL_set1_host(ssl, host) == 1, SSL_set_tlsext_host_name(ssl, host) == 1 else { throw TLSSetupError("TLS session for \(host)") }
        }
    }

    deinit {
        SSL_free(ssl)
    }

    /// Whether `host` is an IPv4 or IPv6 address, as the resolver reads one (a name such as
    /// `cafe.be` is all hexadecimal digits and dots, and still a name).
    static func isAddress(_ host: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET, host, &address) == 1 || inet_pton(AF_INET6, host, &address) == 1
    }

    /// One step of the handshake.
    package func handshake() -> TLSProgress {
        ERR_clear_error()
        let result = SSL_connect(ssl)
        if result == 1 { return .done(0) }
        return progress(result, doing: "the TLS handshake")
    }

    /// Reads what has come, up to `buffer.count` bytes.
    package func read(into buffer: UnsafeMutableRawBufferPointer) -> TLSProgress {
        ERR_clear_error()
        let result = SSL_read(ssl, buffer.baseAddress, Int32(min(buffer.count, Int(Int32.max))))
        if result > 0 { return .done(Int(result)) }
        return progress(result, doing: "reading")
    }

    /// Writes as much of `bytes` as the connection takes now.
    package func write(_ bytes: UnsafeRawBufferPointer) -> TLSProgress {
        guard !bytes.isEmpty else { return .done(0) }
        ERR_clear_error()
        let result = SSL_write(ssl, bytes.baseAddress, Int32(min(bytes.count, Int(Int32.max))))
        if result > 0 { return .done(Int(result)) }
        return progress(result, doing: "writing")
    }

    private func progress(_ result: Int32, doing what: String) -> TLSProgress {
        switch SSL_get_error(ssl, result) {
        case SSL_ERROR_WANT_READ: return .wantRead
        case SSL_ERROR_WANT_WRITE: return .wantWrite
        case SSL_ERROR_ZERO_RETURN: return .closed
        case SSL_ERROR_SYSCALL where ERR_peek_error() == 0:
            // EOF without close_notify, or a reset: the peer is gone either way.
            return .closed
        default:
            let verify = SSL_get_verify_result(ssl)
            if verify != X509_V_OK, let text = X509_verify_cert_error_string(Int(verify)) {
                _ = TLSSetupError.drain()
                return .failed("\(what): the certificate was not accepted: \(String(cString: text))")
            }
            let queue = TLSSetupError.drain()
            return .failed(queue.isEmpty ? what + " failed" : "\(what): \(queue.joined(separator: "; "))")
        }
    }
}

/// A TLS context or session that could not be set up, with BoringSSL's reasons.
package struct TLSSetupError: Error, CustomStringConvertible {
    package var description: String

    init(_ what: String) {
        let queue = Self.drain()
        description = queue.isEmpty ? what + " failed" : "\(what): \(queue.joined(separator: "; "))"
    }

    /// Every queued error as BoringSSL's one-line text, oldest first; the queue is left empty.
    /// (BrokerCrypto's `OpenSSLErrorQueue.drain` reads OpenSSL's queue, a different library's:
    /// the same lines, bound to other symbols, so not one function for both.)
    static func drain() -> [String] {
        var messages: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages
    }
}
