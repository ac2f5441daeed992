import BrokerConfig
import BrokerPOSIX
import BrokerTokens
import Logging

extension Auditor {
    /// Writes the line of the gateway request `plan` (its caller, profile, variant, method,
    /// path, start and bytes in) and what came of it: one per request, never folded, since each
    /// is an action taken in the organisation's name; never a body, a query or a header value
    /// (orders carry national identity numbers, phone numbers and e-mail addresses). `status`
    /// is Altinn's, or the broker's own when `brokerAnswered`; `incomplete`: the answer's body
    /// could not be written whole; `replayed`: sent a second time, with a new token, after a
    /// 401. False when the sink did not take the line.
    @discardableResult
    func forwarded(_ plan: GatewayPlan, status: Int, brokerAnswered: Bool, bytesOut: Int, replayed: Bool, incomplete: Bool) -> Bool {
        guard level <= .info else { return true }
        // The fields in the order the logger sorts them into (by key), written in that order
        // straight into the line.
        let took = plan.started.duration(to: .now)
        let milliseconds = took.components.seconds * 1000 + took.components.attoseconds / 1_000_000_000_000_000
        var line = LineLogHandler.Line(level: .info, message: "api request forwarded", format: output.format)
        if brokerAnswered { line.field("answered_by", "broker") }
        line.field("audit", "true")
        line.field("bytes_in", plan.bytesIn)
        line.field("bytes_out", bytesOut)
        line.field("duration_ms", Int(milliseconds))
        if let executable = plan.peer.executable() { line.field("exe", executable) }
        line.field("gid", Int(plan.peer.gid))
        if incomplete { line.field("incomplete", "true") }
        line.field("method", plan.method)
        line.field("path", plan.path)
        line.field("pid", Int(plan.peer.pid))
        line.field("profile", plan.profile)
        if replayed { line.field("replayed", "true") }
        line.field("status", status)
        line.field("uid", Int(plan.peer.uid))
        if let variant = plan.variant { line.field("variant", variant.auditName) }
        return line.bytes.withUnsafeBufferPointer { output.sink.append(bytes: $0, stream: .audit) }
    }

    /// Whether a request must be refused because its audit line could not be written now.
    func refuses(_ overflow: AuditSettings.Overflow) -> Bool {
        overflow == .refuse && output.sink.isRefusingAudit
    }
}
