package import NIOCore
package import NIOHTTP1

/// One call to send upstream: the gateway's on a caller's behalf (its headers already the ones to
/// send: the caller's, filtered, and the profile's token), or a token call.
package struct ForwardedRequest: Sendable {
    /// The method, as the caller sent it.
    package var method: HTTPMethod
    /// The whole URL: the platform's base, the path and the caller's query.
    package var url: String
    /// The headers to send.
    package var headers: HTTPHeaders
    /// The body, held whole so that it can be sent again after a 401.
    package var body: ByteBuffer
    /// How long Altinn has to answer with its status and headers.
    package var timeout: Duration

    /// A request with the given parts.
    package init(method: HTTPMethod, url: String, headers: HTTPHeaders, body: ByteBuffer, timeout: Duration) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

/// Altinn's answer to a forwarded call: its head, and its body still on the connection, read
/// as the caller takes it (so a large answer is never held whole).
package struct ForwardedAnswer: Sendable {
    /// The status code.
    package var status: Int
    /// The headers, as Altinn sent them.
    package var headers: HTTPHeaders
    /// The body, chunk by chunk; reading it stops when the consumer stops (backpressure).
    package var body: Body

    /// The body of an answer, as the connection reads it: a chunk is read from Altinn only
    /// while fewer than a few wait here, so a large answer to a slow reader is never held whole.
    /// Dropping the body before its end closes the connection it came on.
    package struct Body: AsyncSequence, Sendable {
        package typealias Element = ByteBuffer
        typealias Chunks = NIOThrowingAsyncSequenceProducer<
            ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, ForwardingConnection.Demand
        >
        let chunks: Chunks

        package struct AsyncIterator: AsyncIteratorProtocol {
            var base: Chunks.AsyncIterator
            package mutating func next() async throws -> ByteBuffer? { try await base.next() }
        }

        package func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: chunks.makeAsyncIterator()) }

        /// Reads and drops the rest, up to `limit` bytes (a 401's short body, so that its
        /// connection can be used again); a longer one is left, and its connection closed.
        package func discard(upTo limit: Int = 64 * 1024) async {
            var read = 0
            var iterator = makeAsyncIterator()
            while read <= limit, let chunk = try? await iterator.next() {
                read += chunk.readableBytes
            }
        }
    }
}

/// Why a forwarded call got no answer, in words for the caller's error body: never the URL's
/// query, nor a header.
package enum ForwardingFailure: Error, Sendable {
    /// No connection could be made or kept (DNS, refused, TLS, the proxy).
    case unreachable(String)
    /// No status and headers within the request's timeout.
    case timedOut(String)
    /// The daemon is stopping.
    case stopped
}
