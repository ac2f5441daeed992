import BrokerPOSIX

/// Judges the path a caller asks the gateway for, before anything goes upstream: the path is
/// sent on as written, so it must already be in the one form Altinn's router and every proxy
/// between read the same way. Anything that could be read two ways (`..`, `.`, `//`, an encoded
/// separator or dot, a backslash, a double encoding) is refused rather than normalised, and
/// only then is the path held against the profile's prefixes.
package enum GatewayPath {
    /// Why a path is refused.
    package enum Refusal: Error, Equatable {
        /// Not a plain path: the caller's mistake or a trick (400).
        case malformed(String)
        /// A plain path outside the profile's `gateway.paths` (403).
        case notAllowed(String)
    }

    /// `path` (what follows `/v1/api/{profile}`, query removed) if it may be sent on for a
    /// profile whose gateway allows `prefixes`.
    package static func judge(_ path: Substring, prefixes: [String]) -> Result<Substring, Refusal> {
        // Over the path's bytes in place (a path the scanner read always is; iterating the
        // substring's view was a third of the checks).
        var bytes = path
        return bytes.withUTF8 { judge(UnsafeRawBufferPointer($0), prefixes: prefixes) }.map { path }
    }

    private static func judge(_ path: UnsafeRawBufferPointer, prefixes: [String]) -> Result<Void, Refusal> {
        guard path.first == UInt8(ascii: "/"), path.count > 1 else {
            return .failure(
                .malformed("no API path after the profile: ask for /v1/api/{profile}/{path}, such as /v1/api/notifications/notifications/api/v1/orders"))
        }
        var bytes = path.makeIterator()
        var previous: UInt8 = 0
        // The segment so far: `.` and `..` are refused (a plain dot is anywhere else a dot).
        var segmentLength = 0
        var segmentDots = true
        func dotSegment() -> Refusal? {
            guard segmentDots, segmentLength == 1 || segmentLength == 2 else { return nil }
            return .malformed("the path has a \(segmentLength == 1 ? "." : "..") segment")
        }
        while let byte = bytes.next() {
            switch byte {
            case UInt8(ascii: "/") where previous == UInt8(ascii: "/"):
                return .failure(.malformed("the path has an empty segment (//)"))
            case UInt8(ascii: "/"):
                if let refusal = dotSegment() { return .failure(refusal) }
                segmentLength = 0
                segmentDots = true
            case UInt8(ascii: "\\"):
                return .failure(.malformed("the path holds a backslash"))
            case UInt8(ascii: "%"):
                guard let high = bytes.next().flatMap(PercentEncoding.hexValue), let low = bytes.next().flatMap(PercentEncoding.hexValue) else {
                    return .failure(.malformed("the path has a % that is not followed by two hexadecimal digits"))
                }
                let decoded = high << 4 | low
                if decoded == UInt8(ascii: "/") || decoded == UInt8(ascii: "\\") || decoded == UInt8(ascii: ".") || decoded == UInt8(ascii: "%")
                    || decoded < 0x20 || decoded == 0x7F
                {
                    return .failure(
                        .malformed("the path encodes a separator, a dot, a % or a control character (%2F, %5C, %2E, %25...): write the path plainly"))
                }
                segmentLength += 3
                segmentDots = false
            case 0..<0x21, 0x7F...:
                return .failure(.malformed("the path holds a space, a control character or a byte outside ASCII: percent-encode it"))
            default:
                segmentLength += 1
                if byte != UInt8(ascii: ".") { segmentDots = false }
            }
            previous = byte
        }
        if let refusal = dotSegment() { return .failure(refusal) }
        guard prefixes.contains(where: { path.starts(with: $0.utf8) }) else {
            return .failure(.notAllowed(prefixes.joined(separator: ", ")))
        }
        return .success(())
    }
}
