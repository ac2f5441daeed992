import NIOConcurrencyHelpers

/// Counters for `/metrics`, in Prometheus' text format. Labels hold only route names, status
/// codes and configured profile names: never anything a caller sent.
public final class ServerMetrics: Sendable {
    private struct State {
        var requests: [String: Int] = [:]
        var tokens: [String: Int] = [:]
        var denied: [String: Int] = [:]
        var openConnections = 0
        var refusedConnections = 0
    }

    private let state = NIOLockedValueBox(State())

    /// New, zero counters.
    public init() {}

    func request(route: String, status: UInt) {
        state.withLockedValue { $0.requests["route=\"\(route)\",status=\"\(status)\"", default: 0] += 1 }
    }

    func tokenHandedOut(profile: String) {
        state.withLockedValue { $0.tokens[profile, default: 0] += 1 }
    }

    func denied(profile: String) {
        state.withLockedValue { $0.denied[profile, default: 0] += 1 }
    }

    func connectionOpened() { state.withLockedValue { $0.openConnections += 1 } }
    func connectionClosed() { state.withLockedValue { $0.openConnections -= 1 } }
    func connectionRefused() { state.withLockedValue { $0.refusedConnections += 1 } }

    /// Open connections now.
    public var openConnections: Int { state.withLockedValue { $0.openConnections } }

    /// The exposition text, with per-profile gauges supplied by the caller.
    func render(profiles: [(name: String, state: String, expiresIn: Double?)], certificates: [(name: String, days: Int)] = []) -> String {
        let snapshot = state.withLockedValue { $0 }
        var lines: [String] = []
        lines.append("# HELP maskinporten_broker_requests_total Requests on the socket by route and status.")
        lines.append("# TYPE maskinporten_broker_requests_total counter")
        for (labels, count) in snapshot.requests.sorted(by: { $0.key < $1.key }) {
            lines.append("maskinporten_broker_requests_total{\(labels)} \(count)")
        }
        lines.append("# HELP maskinporten_broker_tokens_served_total Tokens handed out by profile.")
        lines.append("# TYPE maskinporten_broker_tokens_served_total counter")
        for (profile, count) in snapshot.tokens.sorted(by: { $0.key < $1.key }) {
            lines.append("maskinporten_broker_tokens_served_total{profile=\"\(profile)\"} \(count)")
        }
        lines.append("# HELP maskinporten_broker_access_denied_total Requests refused by the allow lists, by profile.")
        lines.append("# TYPE maskinporten_broker_access_denied_total counter")
        for (profile, count) in snapshot.denied.sorted(by: { $0.key < $1.key }) {
            lines.append("maskinporten_broker_access_denied_total{profile=\"\(profile)\"} \(count)")
        }
        lines.append("# HELP maskinporten_broker_profile_state The state of each profile (1 for the current state).")
        lines.append("# TYPE maskinporten_broker_profile_state gauge")
        for profile in profiles {
            lines.append("maskinporten_broker_profile_state{profile=\"\(profile.name)\",state=\"\(profile.state)\"} 1")
        }
        lines.append("# HELP maskinporten_broker_token_expiry_seconds Seconds until the held token of each profile expires.")
        lines.append("# TYPE maskinporten_broker_token_expiry_seconds gauge")
        for profile in profiles {
            if let expiresIn = profile.expiresIn {
                lines.append("maskinporten_broker_token_expiry_seconds{profile=\"\(profile.name)\"} \(Int(expiresIn))")
            }
        }
        lines.append("# HELP maskinporten_broker_certificate_expiry_days Whole days until each business or platform certificate expires.")
        lines.append("# TYPE maskinporten_broker_certificate_expiry_days gauge")
        for certificate in certificates {
            lines.append("maskinporten_broker_certificate_expiry_days{name=\"\(certificate.name)\"} \(certificate.days)")
        }
        lines.append("# HELP maskinporten_broker_open_connections Connections open on the socket.")
        lines.append("# TYPE maskinporten_broker_open_connections gauge")
        lines.append("maskinporten_broker_open_connections \(snapshot.openConnections)")
        lines.append("# HELP maskinporten_broker_evicted_connections_total Oldest connections closed because the connection cap was reached.")
        lines.append("# TYPE maskinporten_broker_evicted_connections_total counter")
        lines.append("maskinporten_broker_evicted_connections_total \(snapshot.refusedConnections)")
        return lines.joined(separator: "\n") + "\n"
    }
}
