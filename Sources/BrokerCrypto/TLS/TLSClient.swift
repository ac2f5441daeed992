import COpenSSL

/// The trust and protocol settings of the fast path's TLS connections to one environment's
/// Altinn: the system's roots plus, if given, the PEM certificates in `ca_file` (as the NIO
/// client trusts), TLS 1.2 at least, the server's name checked against its certificate.
///
/// Why a second TLS stack beside NIO's (BoringSSL, in NIOSSL): the fast path's thread sends a
/// gateway call and reads its answer without leaving its own epoll loop, and NIOSSL's TLS lives
/// inside a NIO channel. libssl is the library libcrypto already comes with.
package final class TLSClientContext: @unchecked Sendable {
    // Immutable once made; OpenSSL's SSL_CTX may be shared by threads making sessions from it.
    fileprivate let context: OpaquePointer

    /// A context trusting the system's roots and the certificates in `caFile`.
    package init(caFile: String?) throws(BrokerCryptoError) {
        guard let context = SSL_CTX_new(TLS_client_method()) else { throw OpenSSLErrorQueue.error("SSL_CTX_new") }
        self.context = context
        guard COpenSSL_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1 else { throw OpenSSLErrorQueue.error("TLS 1.2 as the least version") }
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER, nil)
        // The system's roots may be missing (a minimal image): only ca_file is then trusted.
        _ = SSL_CTX_set_default_verify_paths(context)
        ERR_clear_error()
        if let caFile, SSL_CTX_load_verify_locations(context, caFile, nil) != 1 {
            throw OpenSSLErrorQueue.error("the certificates in \(caFile) could not be read")
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
    package init(context: TLSClientContext, descriptor: Int32, host: String) throws(BrokerCryptoError) {
        guard let ssl = SSL_new(context.context) else { throw OpenSSLErrorQueue.error("SSL_new") }
        self.ssl = ssl
        self.context = context
        _ = COpenSSL_SSL_set_nonblocking_modes(ssl)
        guard SSL_set_fd(ssl, descriptor) == 1, SSL_set1_host(ssl, host) == 1 else { throw OpenSSLErrorQueue.error("TLS session for \(host)") }
        // SNI carries names, not addresses.
        if !host.allSatisfy({ $0.isNumber || $0 == "." || $0 == ":" }) { _ = COpenSSL_SSL_set_tlsext_host_name(ssl, host) }
    }

    deinit {
        SSL_free(ssl)
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
            if verify != X509_V_OK, let text = X509_verify_cert_error_string(verify) {
                _ = OpenSSLErrorQueue.drain()
                return .failed("\(what): the certificate was not accepted: \(String(cString: text))")
            }
            let queue = OpenSSLErrorQueue.drain()
            return .failed(queue.isEmpty ? what + " failed" : "\(what): \(queue.joined(separator: "; "))")
        }
    }
}
