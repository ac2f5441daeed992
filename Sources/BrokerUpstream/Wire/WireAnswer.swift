import BrokerPOSIX
package import NIOHTTP1

/// How an answer's body is framed on Altinn's connection.
package enum WireFraming: Equatable, Sendable {
    /// No body (204, 304, an answer to HEAD, a 1xx).
    case empty
    /// `Content-Length` bytes.
    case length(Int)
    /// `Transfer-Encoding: chunked`: passed on as it comes, chunks and all.
    case chunked
    /// Until Altinn closes the connection.
    case untilClose
}

/// An answer's head, read from the fast path's connection to Altinn.
package struct WireAnswerHead: Sendable {
    /// The status code.
    package var status: Int
    /// Each header field's name and value (without surrounding white space), as places in the
    /// bytes parsed: passed on as they came, without a copy of each as a string.
    package var fields: [(name: Range<Int>, value: Range<Int>)]
    /// The header names a `Connection` header lists besides `keep-alive` and `close`, lower case
    /// (hop-by-hop too); usually none.
    package var connectionOptions: Set<String>
    /// Bytes of the head, up to and including its closing empty line.
    package var length: Int
    /// How the body that follows is framed.
    package var framing: WireFraming
    /// Whether the connection may carry another call once the body has been read.
    package var reusable: Bool

    /// The largest head taken.
    static let maximumLength = 64 * 1024

    /// What the bytes at the start of an answer are.
    package enum Parse: Sendable {
        case incomplete
        case head(WireAnswerHead)
        /// Not an HTTP/1.1 answer the fast path can pass on, in words for the error.
        case invalid(String)
    }

    /// The head at the start of `bytes`, an answer to a `method` request.
    package static func parse(_ bytes: UnsafeRawBufferPointer, method: HTTPMethod) -> Parse {
        var end = -1
        var index = 3
        while index < bytes.count {
            if bytes[index] == 10 && bytes[index - 1] == 13 && bytes[index - 2] == 10 && bytes[index - 3] == 13 {
                end = index + 1
                break
            }
            index += 1
        }
        guard end > 0 else { return bytes.count > maximumLength ? .invalid("Altinn's answer head is too long") : .incomplete }
        // "HTTP/1.x SSS reason"
        let http: StaticString = "HTTP/1."
        guard end >= 16 else { return .invalid("Altinn's answer is not HTTP/1.1") }
        for offset in 0..<7 where bytes[offset] != http.utf8Start[offset] { return .invalid("Altinn's answer is not HTTP/1.1") }
        let minor = bytes[7]
        guard bytes[8] == 0x20 else { return .invalid("Altinn's answer is not HTTP/1.1") }
        var status = 0
        for position in 9..<12 {
            let digit = bytes[position]
            guard (48...57).contains(digit) else { return .invalid("Altinn's answer has no status code") }
            status = status * 10 + Int(digit - 48)
        }
        var fields: [(name: Range<Int>, value: Range<Int>)] = []
        var options: Set<String> = []
        var length: Int?
        var chunked = false
        var close = minor != UInt8(ascii: "1")
        var lineStart = 0
        while bytes[lineStart] != 10 { lineStart += 1 }
        lineStart += 1
        while lineStart < end - 2 {
            var lineEnd = lineStart
            while bytes[lineEnd] != 10 { lineEnd += 1 }
            let line = lineStart..<(bytes[lineEnd - 1] == 13 ? lineEnd - 1 : lineEnd)
            lineStart = lineEnd + 1
            var colon = line.lowerBound
            while colon < line.upperBound && bytes[colon] != UInt8(ascii: ":") { colon += 1 }
            guard colon < line.upperBound, colon > line.lowerBound else { return .invalid("Altinn's answer has a malformed header line") }
            var valueStart = colon + 1
            var valueEnd = line.upperBound
            while valueStart < valueEnd, bytes[valueStart] == 0x20 || bytes[valueStart] == 0x09 { valueStart += 1 }
            while valueEnd > valueStart, bytes[valueEnd - 1] == 0x20 || bytes[valueEnd - 1] == 0x09 { valueEnd -= 1 }
            let name = line.lowerBound..<colon
            let value = valueStart..<valueEnd
            if ASCIIText.equalsIgnoringCase(bytes, name, "content-length") {
                var parsed = 0
                guard !value.isEmpty, value.count <= 18 else { return .invalid("Altinn's answer has a malformed Content-Length") }
                for position in value {
                    guard (48...57).contains(bytes[position]) else { return .invalid("Altinn's answer has a malformed Content-Length") }
                    parsed = parsed * 10 + Int(bytes[position] - 48)
                }
                guard length == nil || length == parsed else { return .invalid("Altinn's answer has a malformed Content-Length") }
                length = parsed
            } else if ASCIIText.equalsIgnoringCase(bytes, name, "transfer-encoding") {
                // Only chunked (last) is passed on as it comes; any other coding is NIO's to read.
                chunked = value.count >= 7 && ASCIIText.equalsIgnoringCase(bytes, (value.upperBound - 7)..<value.upperBound, "chunked")
                if !chunked { return .invalid("Altinn's answer has a transfer coding other than chunked") }
            } else if ASCIIText.equalsIgnoringCase(bytes, name, "connection") {
                if ASCIIText.contains(bytes, value, "close") { close = true }
                if minor == UInt8(ascii: "0") && ASCIIText.contains(bytes, value, "keep-alive") { close = false }
                // The usual values name no header: nothing to split (a string per answer otherwise).
                if ASCIIText.equalsIgnoringCase(bytes, value, "keep-alive") || ASCIIText.equalsIgnoringCase(bytes, value, "close") {
                    fields.append((name, value))
                    continue
                }
                let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[value]), as: UTF8.self)
                for option in text.split(separator: ",") {
                    let lowered = option.trimmed().lowercased()
                    if lowered != "close" && lowered != "keep-alive" { options.insert(lowered) }
                }
            }
            fields.append((name, value))
        }
        let framing: WireFraming
        if (100..<200).contains(status) || status == 204 || status == 304 || method == .HEAD {
            framing = .empty
        } else if chunked {
            framing = .chunked
        } else if let length {
            framing = .length(length)
        } else {
            framing = .untilClose
            close = true
        }
        return .head(WireAnswerHead(status: status, fields: fields, connectionOptions: options, length: end, framing: framing, reusable: !close))
    }
}

/// Finds the end of a body as it passes, without changing a byte of it: the bytes left of a
/// `Content-Length`, or a chunked body's chunks, extensions and trailer.
package struct WireBodyReader: Sendable {
    private enum State: Sendable {
        case remaining(Int)
        case untilClose
        case size(Int, digits: Int)
        case sizeExtension(Int)
        case sizeLF(Int)
        case data(Int)
        case dataCR, dataLF
        case trailerStart, trailerLine, trailerLF, finalLF
        case done
    }
    private var state: State

    /// A reader for a body framed so.
    package init(_ framing: WireFraming) {
        switch framing {
        case .empty: state = .done
        case .length(let length): state = length == 0 ? .done : .remaining(length)
        case .chunked: state = .size(0, digits: 0)
        case .untilClose: state = .untilClose
        }
    }

    /// Whether the body has ended.
    package var finished: Bool {
        if case .done = state { return true }
        return false
    }

    /// Takes the body's bytes from the start of `bytes`: how many belong to it (the rest is not
    /// this answer's), or nil for a chunked body that is malformed.
    package mutating func take(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var index = 0
        while index < bytes.count {
            switch state {
            case .done:
                return index
            case .untilClose:
                return bytes.count
            case .remaining(let left):
                let taken = min(left, bytes.count - index)
                index += taken
                state = left == taken ? .done : .remaining(left - taken)
            case .data(let left):
                let taken = min(left, bytes.count - index)
                index += taken
                state = left == taken ? .dataCR : .data(left - taken)
            default:
                guard step(bytes[index]) else { return nil }
                index += 1
            }
        }
        return index
    }

    private mutating func step(_ byte: UInt8) -> Bool {
        switch state {
        case .size(let value, let digits):
            if let digit = Self.hex(byte) {
                guard digits < 15 else { return false }
                state = .size(value * 16 + digit, digits: digits + 1)
            } else if digits > 0 && (byte == UInt8(ascii: ";") || byte == 0x20 || byte == 0x09) {
                state = .sizeExtension(value)
            } else if digits > 0 && byte == 13 {
                state = .sizeLF(value)
            } else {
                return false
            }
        case .sizeExtension(let value):
            if byte == 13 { state = .sizeLF(value) } else if byte == 10 { return false }
        case .sizeLF(let value):
            guard byte == 10 else { return false }
            state = value == 0 ? .trailerStart : .data(value)
        case .dataCR:
            guard byte == 13 else { return false }
            state = .dataLF
        case .dataLF:
            guard byte == 10 else { return false }
            state = .size(0, digits: 0)
        case .trailerStart:
            state = byte == 13 ? .finalLF : .trailerLine
        case .trailerLine:
            if byte == 13 { state = .trailerLF }
        case .trailerLF:
            guard byte == 10 else { return false }
            state = .trailerStart
        case .finalLF:
            guard byte == 10 else { return false }
            state = .done
        case .remaining, .untilClose, .data, .done:
            return false
        }
        return true
    }

    private static func hex(_ byte: UInt8) -> Int? {
        switch byte {
        case 48...57: Int(byte - 48)
        case 65...70: Int(byte - 55)
        case 97...102: Int(byte - 87)
        default: nil
        }
    }
}
