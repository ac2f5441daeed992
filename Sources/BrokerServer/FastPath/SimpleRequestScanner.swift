import BrokerPOSIX
package import NIOHTTP1

/// A whole `GET` request head with no body, in the one shape the fast path answers itself.
package struct SimpleRequest: Equatable, Sendable {
    /// The request target as sent (path and query).
    package var target: String
    /// Whether the connection stays open after the answer (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`), as NIO's `HTTPRequestHead.isKeepAlive`.
    package var keepAlive: Bool
    /// The first `Accept` header's value, if any (the router picks JSON or bare text by it).
    package var accept: String?
    /// Bytes of the head, up to and including its closing empty line.
    package var length: Int
}

/// A whole gateway request head (`/v1/api/...`) with at most a `Content-Length` body, in the
/// shape the fast path sends on itself.
package struct GatewayRequestHead: Equatable, Sendable {
    /// The method: one of GET, POST, PUT, PATCH, DELETE (whose answers always have a body
    /// framed as sent; HEAD and the rest go to NIO).
    package var method: HTTPMethod
    /// The request target as sent (path and query).
    package var target: String
    /// Every field, as sent (the gateway's filters decide what goes on).
    package var headers: HTTPHeaders
    /// As `SimpleRequest.keepAlive`.
    package var keepAlive: Bool
    /// Bytes of the head, up to and including its closing empty line.
    package var length: Int
    /// The body's length (`Content-Length`, or 0 without one).
    package var bodyLength: Int
}

/// What the fast path makes of the bytes at the start of a connection's unread input.
package enum SimpleRequestScan: Equatable, Sendable {
    /// No end of the head yet, and nothing so far rules the fast path out: read more.
    case incomplete
    /// A request the fast path may answer.
    case simple(SimpleRequest)
    /// A gateway request the fast path may send on (its body follows the head).
    case gateway(GatewayRequestHead)
    /// Anything else (other methods, bodies, framing headers, upgrades, bare LFs, folded or
    /// malformed lines, heads or targets over the limits, garbage): NIO's HTTP/1 codec takes the
    /// connection from these bytes on and answers (or refuses) it as before.
    case other
}

/// Recognises the requests the fast path answers, strictly: only a `GET` head whose every line
/// is well formed (RFC 9112 request line, `token ":" OWS value OWS` fields, CRLF endings) and that
/// carries no body or framing (`Content-Length`, `Transfer-Encoding`), no `Upgrade` and no
/// `Expect`. Whatever it does not recognise it leaves to NIO's parser, so it never has to be
/// as complete as one: being too strict costs a hand-over, never a wrong answer.
package struct SimpleRequestScanner: Sendable {
    /// The most bytes a head may have (request line and fields), as NIO's decoder is configured.
    package var headerBytes: Int
    /// The longest request target.
    package var targetBytes: Int
    /// The most header fields.
    package var maxFields = 100

    /// A scanner for these limits.
    package init(headerBytes: Int, targetBytes: Int) {
        self.headerBytes = headerBytes
        self.targetBytes = targetBytes
    }

    static let cr = UInt8(ascii: "\r"), lf = UInt8(ascii: "\n")

    /// The gateway's methods, each with its request line's start. A request whose first bytes
    /// are not one of these (or "GET ") goes to NIO at once, without waiting for the whole head.
    private static let gatewayStarts: [(HTTPMethod, [UInt8])] = [
        (.GET, Array("GET /v1/api/".utf8)), (.POST, Array("POST /v1/api/".utf8)), (.PUT, Array("PUT /v1/api/".utf8)),
        (.PATCH, Array("PATCH /v1/api/".utf8)), (.DELETE, Array("DELETE /v1/api/".utf8)),
    ]

    /// What `bytes`, a connection's unread input, starts with.
    package func scan(_ bytes: UnsafeRawBufferPointer) -> SimpleRequestScan {
        var gateway: HTTPMethod?
        var methodLength = 3
        // A GET (the cached token's request) is held against one gateway start, not five.
        let isGet = bytes.count >= 4 && bytes[0] == 0x47 && bytes[1] == 0x45 && bytes[2] == 0x54 && bytes[3] == 0x20
        for (method, start) in Self.gatewayStarts where (method == .GET) == isGet && bytes.count >= start.count {
            if Self.starts(bytes, with: start) {
                gateway = method
                methodLength = method.rawValue.utf8.count
                break
            }
        }
        if gateway == nil {
            // "GET " first: anything else goes to NIO at once, without waiting for the whole head.
            let get: [UInt8] = [0x47, 0x45, 0x54, 0x20]
            for index in 0..<min(4, bytes.count) where bytes[index] != get[index] { return .other }
            guard bytes.count >= 4 else { return .incomplete }
        }

        // The end of the head: the first empty line. Every LF must end a CRLF. (The lines are
        // found again below rather than kept: a list of them was an allocation per request.)
        var lineStart = 0
        var lineCount = 0
        var requestLine: Range<Int>?
        var end = -1
        var index = 0
        while index < bytes.count {
            if bytes[index] == Self.lf {
                guard index > 0, bytes[index - 1] == Self.cr else { return .other }
                let line = lineStart..<(index - 1)
                if line.isEmpty {
                    end = index + 1
                    break
                }
                if requestLine == nil { requestLine = line }
                lineCount += 1
                guard lineCount <= maxFields + 1 else { return .other }
                lineStart = index + 1
            }
            index += 1
        }
        guard end > 0 else {
            // NIO's decoder answers a head over the limit (431); nothing more is worth waiting for.
            return bytes.count > headerBytes ? .other : .incomplete
        }
        guard end <= headerBytes, let requestLine else { return .other }

        // Request line: method SP target SP "HTTP/1." ("0" / "1").
        let versionLength = 8  // "HTTP/1.x"
        let targetStart = requestLine.lowerBound + methodLength + 1
        let targetEnd = requestLine.upperBound - versionLength - 1
        guard targetEnd > targetStart, bytes[targetEnd] == 0x20 else { return .other }
        let version: [UInt8] = Array("HTTP/1.".utf8)
        for offset in 0..<7 where bytes[targetEnd + 1 + offset] != version[offset] { return .other }
        let minor = bytes[requestLine.upperBound - 1]
        guard minor == UInt8(ascii: "0") || minor == UInt8(ascii: "1") else { return .other }
        guard bytes[targetStart] == UInt8(ascii: "/"), targetEnd - targetStart <= targetBytes else { return .other }
        for position in targetStart..<targetEnd where !(0x21...0x7E).contains(bytes[position]) { return .other }

        // Fields.
        var close = false
        var keepAliveToken = false
        var accept: String?
        var headers = HTTPHeaders()
        var bodyLength: Int?
        var nextLine = requestLine.upperBound + 2
        while nextLine < end - 2 {
            var lineEnd = nextLine
            while bytes[lineEnd] != Self.lf { lineEnd += 1 }
            let line = nextLine..<(lineEnd - 1)
            nextLine = lineEnd + 1
            var colon = -1
            for position in line {
                let byte = bytes[position]
                if byte == UInt8(ascii: ":") {
                    colon = position
                    break
                }
                guard Self.isTokenCharacter(byte) else { return .other }
            }
            guard colon > line.lowerBound else { return .other }
            var valueStart = colon + 1
            var valueEnd = line.upperBound
            while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
            while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            for position in valueStart..<valueEnd {
                let byte = bytes[position]
                guard byte == 0x09 || byte >= 0x20 && byte != 0x7F else { return .other }
            }
            let name = line.lowerBound..<colon
            let field = Self.field(bytes, name)
            if gateway != nil {
                if case .contentLength = field {
                    // One length, of digits only: anything else (a list, a sign) is NIO's to judge.
                    guard bodyLength == nil, valueEnd > valueStart, valueEnd - valueStart <= 9 else { return .other }
                    var length = 0
                    for position in valueStart..<valueEnd {
                        guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) else { return .other }
                        length = length * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                    }
                    bodyLength = length
                }
                // Trailing white space kept, as NIO's parser keeps it.
                headers.add(
                    name: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[name]), as: UTF8.self),
                    value: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<line.upperBound]), as: UTF8.self))
            }
            switch field {
            case .contentLength:
                guard gateway != nil else { return .other }
            case .framing:
                return .other
            case .connection:
                for option in Self.connectionOptions(bytes, valueStart..<valueEnd) {
                    switch option {
                    case .close: close = true
                    case .keepAlive: keepAliveToken = true
                    case .upgrade: return .other
                    case .other: break
                    }
                }
            case .accept:
                if accept == nil {
                    // Trailing white space kept, as NIO's parser keeps it (FuzzHTTP compares them).
                    accept = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[valueStart..<line.upperBound]), as: UTF8.self)
                }
            case .other:
                break
            }
        }
        let target = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[targetStart..<targetEnd]), as: UTF8.self)
        let keepAlive = minor == UInt8(ascii: "1") ? !close : keepAliveToken && !close
        if let gateway {
            return .gateway(
                GatewayRequestHead(method: gateway, target: target, headers: headers, keepAlive: keepAlive, length: end, bodyLength: bodyLength ?? 0))
        }
        return .simple(SimpleRequest(target: target, keepAlive: keepAlive, accept: accept, length: end))
    }

    // MARK: - Fields

    private enum Field {
        case contentLength, framing, connection, accept, other
    }

    private static func field(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Field {
        if ASCIIText.equalsIgnoringCase(bytes, name, "content-length") { return .contentLength }
        if ASCIIText.equalsIgnoringCase(bytes, name, "transfer-encoding")
            || ASCIIText.equalsIgnoringCase(bytes, name, "upgrade") || ASCIIText.equalsIgnoringCase(bytes, name, "expect")
        {
            return .framing
        }
        if ASCIIText.equalsIgnoringCase(bytes, name, "connection") { return .connection }
        if ASCIIText.equalsIgnoringCase(bytes, name, "accept") { return .accept }
        return .other
    }

    private enum ConnectionOption {
        case close, keepAlive, upgrade, other
    }

    /// The comma-separated options of a `Connection` value.
    private static func connectionOptions(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> [ConnectionOption] {
        var options: [ConnectionOption] = []
        var start = value.lowerBound
        while start <= value.upperBound {
            var end = start
            while end < value.upperBound, bytes[end] != UInt8(ascii: ",") { end += 1 }
            var low = start
            var high = end
            while low < high, bytes[low] == 0x20 || bytes[low] == 0x09 { low += 1 }
            while high > low, bytes[high - 1] == 0x20 || bytes[high - 1] == 0x09 { high -= 1 }
            let option = low..<high
            if ASCIIText.equalsIgnoringCase(bytes, option, "close") {
                options.append(.close)
            } else if ASCIIText.equalsIgnoringCase(bytes, option, "keep-alive") {
                options.append(.keepAlive)
            } else if ASCIIText.equalsIgnoringCase(bytes, option, "upgrade") {
                options.append(.upgrade)
            } else {
                options.append(.other)
            }
            start = end + 1
        }
        return options
    }

    private static func starts(_ bytes: UnsafeRawBufferPointer, with prefix: [UInt8]) -> Bool {
        for index in 0..<prefix.count where bytes[index] != prefix[index] { return false }
        return true
    }

    /// RFC 9110 `tchar`.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
