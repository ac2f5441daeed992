#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// RFC 3339 timestamps in UTC, by `gmtime_r`. Foundation's ISO 8601 styles go through its time
/// zone machinery, which maps ICU's time zone data into the daemon: about a megabyte resident for
/// a format that never changes (Benchmarks, idle memory).
package enum UTCTimestamp {
    /// `2026-11-25T00:51:29Z` for whole seconds since 1970; with `milliseconds`,
    /// `2026-11-25T00:51:29.123Z`.
    package static func format(secondsSince1970 seconds: Int, milliseconds: Int? = nil) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        append(secondsSince1970: seconds, milliseconds: milliseconds, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The same, appended to `bytes`: the log writer stamps each line this way, off the request
    /// path and without a string per line.
    package static func append(secondsSince1970 seconds: Int, milliseconds: Int? = nil, to bytes: inout [UInt8]) {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else {
            bytes.append(contentsOf: "1970-01-01T00:00:00Z".utf8)
            return
        }
        digits(Int(parts.tm_year) + 1900, width: 4, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mon) + 1, width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "-"))
        digits(Int(parts.tm_mday), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: "T"))
        clock(parts, to: &bytes)
        if let milliseconds {
            bytes.append(UInt8(ascii: "."))
            digits(milliseconds, width: 3, to: &bytes)
        }
        bytes.append(UInt8(ascii: "Z"))
    }

    /// The day alone, `2026-11-25`: check-config's key ages and the names of made key files.
    package static func day(secondsSince1970 seconds: Int) -> String {
        String(format(secondsSince1970: seconds).prefix(10))
    }

    /// An HTTP date (RFC 9110's IMF-fixdate), `Wed, 25 Nov 2026 00:51:29 GMT`.
    package static func httpDate(secondsSince1970 seconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "Thu, 01 Jan 1970 00:00:00 GMT" }
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        var bytes = Array((days[Int(parts.tm_wday)] + ", ").utf8)
        digits(Int(parts.tm_mday), width: 2, to: &bytes)
        bytes += Array((" " + months[Int(parts.tm_mon)] + " ").utf8)
        digits(Int(parts.tm_year) + 1900, width: 4, to: &bytes)
        bytes.append(UInt8(ascii: " "))
        clock(parts, to: &bytes)
        bytes += Array(" GMT".utf8)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Now, with milliseconds.
    package static func now() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return format(secondsSince1970: Int(now.tv_sec), milliseconds: Int(now.tv_nsec) / 1_000_000)
    }

    /// `HH:MM:SS` of `parts`.
    private static func clock(_ parts: tm, to bytes: inout [UInt8]) {
        digits(Int(parts.tm_hour), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_min), width: 2, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        digits(Int(parts.tm_sec), width: 2, to: &bytes)
    }

    /// `value` in decimal, zero-padded to `width` (values here are never negative).
    private static func digits(_ value: Int, width: Int, to bytes: inout [UInt8]) {
        var scratch:
            (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        withUnsafeMutableBytes(of: &scratch) { buffer in
            var remaining = max(0, value)
            var count = 0
            repeat {
                buffer[buffer.count - 1 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
                count += 1
            } while remaining > 0 && count < buffer.count
            while count < width && count < buffer.count {
                buffer[buffer.count - 1 - count] = UInt8(ascii: "0")
                count += 1
            }
            bytes.append(contentsOf: buffer[(buffer.count - count)...])
        }
    }
}
