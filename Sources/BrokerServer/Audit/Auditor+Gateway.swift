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
        // The fields in the order the logger sorts them into (by key), built in that order: a
        // dictionary and its sort were a tenth of a forwarded call's CPU.
        let milliseconds = call.took.components.seconds * 1000 + call.took.components.attoseconds / 1_000_000_000_000_000
        var fields: [(String, String)] = []
        fields.reserveCapacity(16)
        if call.brokerAnswered { fields.append(("answered_by", "broker")) }
        fields.append(("audit", "true"))
        fields.append(("bytes_in", String(call.bytesIn)))
        fields.append(("bytes_out", String(call.bytesOut)))
        fields.append(("duration_ms", String(milliseconds)))
        if let executable = peer.executable() { fields.append(("exe", executable)) }
        fields.append(("gid", String(peer.gid)))
        if call.incomplete { fields.append(("incomplete", "true")) }
        fields.append(("method", call.method))
        fields.append(("path", String(call.path)))
        fields.append(("pid", String(peer.pid)))
        fields.append(("profile", call.profile))
        if call.replayed { fields.append(("replayed", "true")) }
        fields.append(("status", String(call.status)))
        fields.append(("uid", String(peer.uid)))
        if let variant = call.variant { fields.append(("variant", variant.auditName)) }
        let line = LineLogHandler.line(level: .info, message: "api request forwarded", fields: fields, format: output.format)
        return line.withUnsafeBufferPointer { output.sink.append(bytes: $0, stream: .audit) }
    }

    /// Whether a request must be refused because its audit line could not be written now.
    func refuses(_ overflow: AuditSettings.Overflow) -> Bool {
        overflow == .refuse && output.sink.isRefusingAudit
    }
}
