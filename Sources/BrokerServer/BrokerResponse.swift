import BrokerPOSIX
import FoundationEssentials
package import NIOCore
package import NIOHTTP1

/// One HTTP request as the router sees it.
package struct BrokerRequest: Sendable {
    /// The method.
    package var method: HTTPMethod
    /// The path, without the query.
    package var path: String
    /// Query parameters.
    package var query: [String: String]
    /// Request headers.
    package var headers: HTTPHeaders
    /// The body.
    package var body: ByteBuffer
    /// The request target as sent: path and query.
    package var target: String

    /// The path of a request target: what comes before its query.
    static func path(of uri: String) -> String {
        uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { String(uri[..<$0]) } ?? uri
    }

    /// The query as sent, undecoded (what the gateway passes on), or nil when there is none.
    var rawQuery: Substring? {
        target.utf8.firstIndex(of: UInt8(ascii: "?")).map { target[target.utf8.index(after: $0)...] }
    }

    /// A request from its head and body.
    package init(head: HTTPRequestHead, body: ByteBuffer) {
        self.init(method: head.method, uri: head.uri, headers: head.headers, body: body)
    }

    /// A request the fast path read: a `GET` without a body. Of its headers only `Accept` is
    /// kept, the one `Router.handleImmediately` reads.
    init(_ simple: SimpleRequest) {
        var headers = HTTPHeaders()
        if let accept = simple.accept { headers.add(name: "Accept", value: accept) }
        self.init(method: .GET, uri: simple.target, headers: headers, body: ByteBuffer())
    }

    /// A gateway request the fast path read: its head as scanned, its body whole.
    init(gateway head: GatewayRequestHead, body: ByteBuffer) {
        self.init(method: head.method, uri: head.target, headers: head.headers, body: body)
    }

    private init(method: HTTPMethod, uri: String, headers: HTTPHeaders, body: ByteBuffer) {
        self.method = method
        target = uri
        if let mark = uri.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(uri[..<mark])
            query = Self.parseQuery(uri[uri.utf8.index(after: mark)...])
        } else {
            path = uri
            query = [:]
        }
        self.headers = headers
        self.body = body
    }

    /// `name=value&...` as a dictionary; a name given twice keeps its last value. One pass over
    /// the bytes: this runs for each delegated token request on the fast path.
    static func parseQuery(_ text: Substring) -> [String: String] {
        var result: [String: String] = [:]
        var rest = text
        while !rest.isEmpty {
            let end = rest.utf8.firstIndex(of: UInt8(ascii: "&")) ?? rest.endIndex
            let pair = rest[..<end]
            rest = end == rest.endIndex ? rest[end...] : rest[rest.utf8.index(after: end)...]
            guard !pair.isEmpty else { continue }
            let equals = pair.utf8.firstIndex(of: UInt8(ascii: "=")) ?? pair.endIndex
            guard let name = PercentEncoding.decode(pair[..<equals]) else { continue }
            result[name] = equals == pair.endIndex ? "" : PercentEncoding.decode(pair[pair.utf8.index(after: equals)...]) ?? ""
        }
        return result
    }

    /// Whether the client prefers `text/plain` (the bare token) to JSON.
    var wantsPlainText: Bool {
        guard let accept = headers.first(name: "Accept") else { return false }
        // Byte searches: String.contains(String) would go through Foundation's NSString, and
        // the generic `firstRange(of:)` was 18 % of a fast-path request.
        return ASCIIText.contains(accept, ignoringCase: "text/plain") && !ASCIIText.contains(accept, ignoringCase: "application/json")
    }
}

/// One HTTP answer.
package struct BrokerResponse: Sendable {
    /// The status.
    package var status: HTTPResponseStatus
    /// Headers besides Content-Length and Connection.
    package var headers: HTTPHeaders
    /// The body.
    package var body: ByteBuffer

    /// An answer.
    package init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    // MARK: - On the wire

    /// The headers that go out with the answer: its own, then Content-Length and Connection.
    /// NIO's encoder writes them for `BrokerHTTPHandler`; `append` writes the same bytes itself.
    func wireHeaders(keepAlive: Bool) -> HTTPHeaders {
        var headers = self.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        headers.replaceOrAdd(name: "Connection", value: keepAlive ? "keep-alive" : "close")
        return headers
    }

    /// The whole answer as HTTP/1.1 bytes, as NIO's encoder writes it with `wireHeaders`: for
    /// the fast path, which writes without NIO, and for the byte guard's refusal, written before
    /// NIO's codec. (Built without an `HTTPHeaders` copy: the fast path's per-request cost.)
    /// FuzzHTTP checks that both paths answer byte for byte alike.
    func append(keepAlive: Bool, to output: inout [UInt8]) {
        if status == .ok {
            output.append(contentsOf: Self.okLine)
        } else {
            output.append(contentsOf: "HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n".utf8)
        }
        for (name, value) in headers {
            output.append(contentsOf: name.utf8)
            output.append(UInt8(ascii: ":"))
            output.append(UInt8(ascii: " "))
            output.append(contentsOf: value.utf8)
            output.append(contentsOf: Self.crlf)
        }
        output.append(contentsOf: "Content-Length: ".utf8)
        output.append(contentsOf: String(body.readableBytes).utf8)
        output.append(contentsOf: keepAlive ? "\r\nConnection: keep-alive\r\n\r\n".utf8 : "\r\nConnection: close\r\n\r\n".utf8)
        body.withUnsafeReadableBytes { output.append(contentsOf: $0) }
    }

    private static let okLine = Array("HTTP/1.1 200 OK\r\n".utf8)
    private static let crlf: [UInt8] = [0x0D, 0x0A]

    // MARK: - Answers

    /// A JSON answer from an encodable value.
    static func json(_ status: HTTPResponseStatus, _ value: some Encodable, noStore: Bool = false) -> BrokerResponse {
        let data = (try? JSONCoding.encoder.encode(value)) ?? Data("{}".utf8)
        var headers: HTTPHeaders = ["Content-Type": "application/json"]
        if noStore { headers.add(name: "Cache-Control", value: "no-store") }
        return BrokerResponse(status: status, headers: headers, body: ByteBuffer(bytes: data + [UInt8(ascii: "\n")]))
    }

    /// A plain-text answer.
    static func text(_ status: HTTPResponseStatus, _ text: String, contentType: String = "text/plain; charset=utf-8", noStore: Bool = false) -> BrokerResponse {
        var headers: HTTPHeaders = ["Content-Type": contentType]
        if noStore { headers.add(name: "Cache-Control", value: "no-store") }
        return BrokerResponse(status: status, headers: headers, body: ByteBuffer(string: text))
    }

    /// The error body (docs/socket-api.md): `{"error","error_description"}`, with `upstream` when an upstream
    /// answered.
    static func error(_ status: HTTPResponseStatus, _ code: String, _ description: String, upstream: UpstreamAnswerBody? = nil, retryAfter: Duration? = nil)
        -> BrokerResponse
    {
        var response = json(status, ErrorBody(error: code, errorDescription: description, upstream: upstream), noStore: true)
        if let retryAfter {
            let seconds = max(1, Int((Double(retryAfter.components.seconds) + Double(retryAfter.components.attoseconds) / 1e18).rounded(.up)))
            response.headers.add(name: "Retry-After", value: String(seconds))
        }
        return response
    }
}

/// `{"error","error_description","upstream"}`.
struct ErrorBody: Encodable {
    var error: String
    var errorDescription: String
    var upstream: UpstreamAnswerBody?

    enum CodingKeys: String, CodingKey {
        case error
        case errorDescription = "error_description"
        case upstream
    }
}

/// `"upstream":{"status","error","error_description"}`.
package struct UpstreamAnswerBody: Encodable, Sendable {
    var status: Int
    var error: String?
    var errorDescription: String?

    enum CodingKeys: String, CodingKey {
        case status, error
        case errorDescription = "error_description"
    }
}

/// Shared JSON settings: sorted keys for stable output, `/` unescaped.
enum JSONCoding {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// RFC 3339 in UTC, whole seconds: `2026-11-25T00:51:29Z`.
    static func rfc3339(_ date: Date) -> String {
        UTCTimestamp.format(secondsSince1970: Int(date.timeIntervalSince1970.rounded(.down)))
    }
}
