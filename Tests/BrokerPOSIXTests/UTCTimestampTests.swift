import Foundation
import Testing

@testable import BrokerPOSIX

/// The hand-made RFC 3339 formatter against Foundation's, which it replaces.
@Suite("UTCTimestamp")
struct UTCTimestampTests {
    @Test("whole seconds match Foundation's ISO 8601 format", arguments: [0, 1, 59, 951_782_400, 1_764_032_489, 1_798_761_599, 4_102_444_800, 253_402_300_799])
    func wholeSeconds(seconds: Int) {
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        #expect(UTCTimestamp.format(secondsSince1970: seconds) == date.formatted(.iso8601))
        // What check-config's key ages and made keys' names were written with.
        #expect(UTCTimestamp.day(secondsSince1970: seconds) == date.formatted(.iso8601.year().month().day()))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        #expect(UTCTimestamp.httpDate(secondsSince1970: seconds) == formatter.string(from: date))
    }

    @Test("milliseconds are three digits, zero-padded")
    func milliseconds() {
        #expect(UTCTimestamp.format(secondsSince1970: 1_764_032_489, milliseconds: 7) == "2025-11-25T01:01:29.007Z")
        #expect(UTCTimestamp.format(secondsSince1970: 0, milliseconds: 999) == "1970-01-01T00:00:00.999Z")
        let now = UTCTimestamp.now()
        #expect(now.utf8.count == 24 && now.hasPrefix("20") && now.hasSuffix("Z"), "\(now)")
    }
}
