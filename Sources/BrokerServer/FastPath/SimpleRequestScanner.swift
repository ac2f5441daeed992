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

/// What the fast path makes of the bytes at the start of a connection's unread input.
package enum SimpleRequestScan: Equatable, Sendable {
    /// No end of the head yet, and nothing so far rules the fast path out: read more.
    case incomplete
    /// A request the fast path may answer.
    case simple(SimpleRequest)
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

    /// What `bytes`, a connection's unread input, starts with.
    package func scan(_ bytes: UnsafeRawBufferPointer) -> SimpleRequestScan {
        // "GET " first: anything else goes to NIO at once, without waiting for the whole head.
        let get: [UInt8] = [0x47, 0x45, 0x54, 0x20]
        for index in 0..<min(4, bytes.count) where bytes[index] != get[index] { return .other }
        guard bytes.count >= 4 else { return .incomplete }

        // The end of the head: the first empty line. Every LF must end a CRLF.
        var lineStart = 0
        var lines: [Range<Int>] = []
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
                lines.append(line)
                guard lines.count <= maxFields + 1 else { return .other }
                lineStart = index + 1
            }
            index += 1
        }
        guard end > 0 else {
            // NIO's decoder answers a head over the limit (431); nothing more is worth waiting for.
            return bytes.count > headerBytes ? .other : .incomplete
        }
        guard end <= headerBytes, let requestLine = lines.first else { return .other }

        // Request line: "GET" SP target SP "HTTP/1." ("0" / "1").
        let versionLength = 8  // "HTTP/1.x"
        let targetStart = requestLine.lowerBound + 4
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
        for line in lines.dropFirst() {
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
            switch Self.field(bytes, name) {
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
        return .simple(SimpleRequest(target: target, keepAlive: keepAlive, accept: accept, length: end))
    }

    // MARK: - Fields

    private enum Field {
        case framing, connection, accept, other
    }

    private static func field(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Field {
        if ASCIIText.equalsIgnoringCase(bytes, name, "content-length") || ASCIIText.equalsIgnoringCase(bytes, name, "transfer-encoding")
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

/// Case-insensitive ASCII comparisons over bytes, without Foundation or generic searching (both
/// cost more than the rest of a cached-token request).
enum ASCIIText {
    /// Whether `bytes[range]` is `lowercase` in any letter case (`lowercase` is ASCII lower case).
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for offset in 0..<range.count {
            var byte = bytes[range.lowerBound + offset]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            guard byte == expected[offset] else { return false }
        }
        return true
    }

    /// Whether `text` contains `lowercase` in any letter case.
    static func contains(_ text: String, ignoringCase lowercase: StaticString) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            let length = lowercase.utf8CodeUnitCount
            guard bytes.count >= length else { return false }
            for start in 0...(bytes.count - length) where equalsIgnoringCase(bytes, start..<(start + length), lowercase) {
                return true
            }
            return false
        }
    }
}
