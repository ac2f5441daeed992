import BrokerConfig
import BrokerPOSIX
import BrokerTokens
import Logging

extension Auditor {
    /// One gateway request, as its audit line records it: what was asked and what came of it,
    /// never a body, a query or a header value (orders carry national identity numbers, phone
    /// numbers and e-mail addresses).
    struct GatewayCall {
        var profile: String
        var variant: TokenVariant?
        var method: String
        /// The API path, without its query.
        var path: Substring
        /// Altinn's status, or the broker's own for an answer it made.
        var status: Int
        /// Whether the broker answered (an error of its own) rather than Altinn.
        var brokerAnswered: Bool
        var took: Duration
        var bytesIn: Int
        var bytesOut: Int
        /// Sent a second time, with a new token, after a 401.
        var replayed: Bool
        /// The answer's body could not be written whole (the caller went away, Altinn's stream broke).
        var incomplete: Bool
    }

    /// Writes `call`'s line: one per request, never folded, since each is an action taken in
    /// the organisation's name. False when the sink did not take it.
    @discardableResult
    func forwarded(_ call: GatewayCall, peer: PeerCredentials) -> Bool {
        guard level <= .info else { return true }
        // The fields in the order the logger sorts them into (by key), written in that order
        // straight into the line.
        let milliseconds = call.took.components.seconds * 1000 + call.took.components.attoseconds / 1_000_000_000_000_000
        var line = LineLogHandler.Line(level: .info, message: "api request forwarded", format: output.format)
        if call.brokerAnswered { line.field("answered_by", "broker") }
        line.field("audit", "true")
        line.field("bytes_in", call.bytesIn)
        line.field("bytes_out", call.bytesOut)
        line.field("duration_ms", Int(milliseconds))
        if let executable = peer.executable() { line.field("exe", executable) }
        line.field("gid", Int(peer.gid))
        if call.incomplete { line.field("incomplete", "true") }
        line.field("method", call.method)
        line.field("path", call.path)
        line.field("pid", Int(peer.pid))
        line.field("profile", call.profile)
        if call.replayed { line.field("replayed", "true") }
        line.field("status", call.status)
        line.field("uid", Int(peer.uid))
        if let variant = call.variant { line.field("variant", variant.auditName) }
        return line.bytes.withUnsafeBufferPointer { output.sink.append(bytes: $0, stream: .audit) }
    }

    /// Whether a request must be refused because its audit line could not be written now.
    func refuses(_ overflow: AuditSettings.Overflow) -> Bool {
        overflow == .refuse && output.sink.isRefusingAudit
    }
}
