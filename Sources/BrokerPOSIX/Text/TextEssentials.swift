/// What the daemon needs of Foundation's string methods, written without Foundation: its string
/// methods come with ICU, whose data was half the executable.

/// Percent-encoding (RFC 3986) of URL parts and form fields.
package enum PercentEncoding {
    /// `text` with every byte but ASCII letters, digits and those in `keeping` written as `%XX`
    /// (upper-case hex), so that it cannot change a path, query or form it is put into.
    package static func encode(_ text: some StringProtocol, keeping: String = "-._~") -> String {
        let kept = Array(keeping.utf8)
        var result: [UInt8] = []
        result.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                result.append(byte)
            case _ where kept.contains(byte):
                result.append(byte)
            default:
                result += [UInt8(ascii: "%"), hexDigit(byte >> 4), hexDigit(byte & 0x0F)]
            }
        }
        return String(decoding: result, as: UTF8.self)
    }

    /// `text` with its `%XX` sequences decoded; nil when one is malformed or the result is not
    /// UTF-8.
    package static func decode(_ text: some StringProtocol) -> String? {
        decode(Substring(text))
    }

    /// The same for a substring (a query's component): not generic, so that the serving path's
    /// call is not made through the generic's witness tables (a sixth of a cached variant's CPU).
    package static func decode(_ text: Substring) -> String? {
        // A delegated token request decodes its query on the serving path: most components
        // have no `%`, and they cost no copy of their bytes.
        guard text.utf8.contains(UInt8(ascii: "%")) else { return String(text) }
        let bytes = Array(text.utf8)
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else { return nil }
                result.append(high << 4 | low)
                index += 3
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return String(validating: result, as: UTF8.self)
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }

    /// The value of one hex digit, either case.
    package static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension StringProtocol {
    /// Without white space or line ends at either end.
    package func trimmed() -> String {
        guard let first = firstIndex(where: { !$0.isWhitespace }), let last = lastIndex(where: { !$0.isWhitespace }) else { return "" }
        return String(self[first...last])
    }
}

extension Collection where Element: Equatable {
    /// Where `pattern` first occurs, or nil (nil for an empty pattern, as the standard library
    /// says). The standard library's `firstRange(of:)` lives in its string-processing module,
    /// whose one object file brings the regex parser with it: 1.3 MB of each executable, for a
    /// search the broker runs on a few hundred bytes at most.
    package func firstRange(ofElements pattern: some Collection<Element>) -> Range<Index>? {
        guard let head = pattern.first else { return nil }
        var start = startIndex
        while let candidate = self[start...].firstIndex(of: head) {
            var position = candidate
            var matched = true
            for element in pattern {
                guard position != endIndex, self[position] == element else {
                    matched = false
                    break
                }
                formIndex(after: &position)
            }
            if matched { return candidate..<position }
            start = index(after: candidate)
        }
        return nil
    }
}

extension StringProtocol {
    /// Whether `other` occurs in this text, byte for byte: `contains(_:)` with a string is the
    /// string-processing module's (see `firstRange(ofElements:)`).
    package func containsText(_ other: some StringProtocol) -> Bool {
        utf8.firstRange(ofElements: other.utf8) != nil
    }
}

/// File paths as text.
package enum PathText {
    /// The directory `path` names a file in: what comes before its last `/` (trailing ones
    /// aside); "/" for a file in the root, "" for a bare name.
    package static func directory(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// The last component of `path`, trailing slashes aside.
    package static func lastComponent(of path: String) -> String {
        var trimmed = Substring(path)
        while trimmed.count > 1 && trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        guard let slash = trimmed.lastIndex(of: "/"), trimmed.count > 1 else { return String(trimmed) }
        return String(trimmed[trimmed.index(after: slash)...])
    }
}
