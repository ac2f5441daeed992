package import BrokerPOSIX
package import FoundationEssentials

// Dates, as `UTCTimestamp` writes them, here rather than in BrokerPOSIX: the small client links
// BrokerPOSIX statically, and nothing of Foundation's essentials comes with it.
extension UTCTimestamp {
    /// `date` to the second, `2026-11-25T00:51:29Z`: the dates in messages (a certificate's
    /// expiry).
    package static func format(_ date: Date) -> String {
        format(secondsSince1970: Int(date.timeIntervalSince1970.rounded(.down)))
    }

    /// The day of `date`, `2026-11-25`.
    package static func day(_ date: Date) -> String {
        day(secondsSince1970: Int(date.timeIntervalSince1970.rounded(.down)))
    }
}
