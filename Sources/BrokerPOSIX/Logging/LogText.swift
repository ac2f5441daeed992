/// Text from outside (an upstream answer, a proxy's user name) made fit for a log line, an error
/// message or a client's answer.
package enum LogText {
    /// At most `limit` characters, control characters replaced by spaces, so that it can neither
    /// break a line nor flood one.
    package static func printable(_ text: String, limit: Int = 300) -> String {
        let printable = text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) }
        let joined = String(printable)
        return joined.count > limit ? String(joined.prefix(limit)) + "…" : joined
    }
}
