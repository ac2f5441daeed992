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
enum UTCTimestamp {
    /// `2026-11-25T00:51:29Z` for whole seconds since 1970; with `milliseconds`,
    /// `2026-11-25T00:51:29.123Z`.
    static func format(secondsSince1970 seconds: Int, milliseconds: Int? = nil) -> String {
        var time = time_t(seconds)
        var parts = tm()
        guard gmtime_r(&time, &parts) != nil else { return "1970-01-01T00:00:00Z" }
        var text = ""
        text.reserveCapacity(24)
        append(Int(parts.tm_year) + 1900, width: 4, to: &text)
        text += "-"
        append(Int(parts.tm_mon) + 1, width: 2, to: &text)
        text += "-"
        append(Int(parts.tm_mday), width: 2, to: &text)
        text += "T"
        append(Int(parts.tm_hour), width: 2, to: &text)
        text += ":"
        append(Int(parts.tm_min), width: 2, to: &text)
        text += ":"
        append(Int(parts.tm_sec), width: 2, to: &text)
        if let milliseconds {
            text += "."
            append(milliseconds, width: 3, to: &text)
        }
        text += "Z"
        return text
    }

    /// Now, with milliseconds (log lines).
    static func now() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return format(secondsSince1970: Int(now.tv_sec), milliseconds: Int(now.tv_nsec) / 1_000_000)
    }

    private static func append(_ value: Int, width: Int, to text: inout String) {
        let digits = String(value)
        if digits.utf8.count < width { text += String(repeating: "0", count: width - digits.utf8.count) }
        text += digits
    }
}
