import Metrics
import NIOConcurrencyHelpers
public import Prometheus

/// The daemon's metrics, through swift-metrics into a swift-prometheus registry that `/metrics`
/// (and the optional TCP metrics listener) renders. Labels hold only route names, status codes
/// and configured names: never anything a caller sent. BrokerCore's own metrics (upstream calls,
/// latency, refresh failures) reach the same registry through `MetricsSystem`.
public final class ServerMetrics: Sendable {
    /// The registry rendered on `/metrics`.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let open = NIOLockedValueBox(0)

    /// Metrics in `registry`.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
    }

    func request(route: String, status: UInt) {
        Counter(label: "maskinporten_broker_requests_total", dimensions: [("route", route), ("status", "\(status)")], factory: factory).increment()
    }

    func tokenHandedOut(profile: String) {
        Counter(label: "maskinporten_broker_tokens_served_total", dimensions: [("profile", profile)], factory: factory).increment()
    }

    func denied(profile: String) {
        Counter(label: "maskinporten_broker_access_denied_total", dimensions: [("profile", profile)], factory: factory).increment()
    }

    func connectionOpened() { recordOpen(open.withLockedValue { $0 += 1; return $0 }) }
    func connectionClosed() { recordOpen(open.withLockedValue { $0 -= 1; return $0 }) }

    func connectionRefused() {
        Counter(label: "maskinporten_broker_evicted_connections_total", factory: factory).increment()
    }

    private func recordOpen(_ count: Int) {
        Gauge(label: "maskinporten_broker_open_connections", factory: factory).record(count)
    }

    /// Open connections now.
    public var openConnections: Int { open.withLockedValue { $0 } }

    static let states = ["starting", "ready", "refreshing", "degraded", "failing", "unavailable"]

    /// The exposition text, after setting the per-profile gauges from the given snapshot.
    func render(profiles: [(name: String, state: String, expiresIn: Double?)], certificates: [(name: String, days: Int)] = []) -> String {
        for profile in profiles {
            for state in Self.states {
                Gauge(label: "maskinporten_broker_profile_state", dimensions: [("profile", profile.name), ("state", state)], factory: factory)
                    .record(state == profile.state ? 1 : 0)
            }
            if let expiresIn = profile.expiresIn {
                Gauge(label: "maskinporten_broker_token_expiry_seconds", dimensions: [("profile", profile.name)], factory: factory).record(Int(expiresIn))
            }
        }
        for certificate in certificates {
            Gauge(label: "maskinporten_broker_certificate_expiry_days", dimensions: [("name", certificate.name)], factory: factory).record(certificate.days)
        }
        recordOpen(openConnections)
        Counter(label: "maskinporten_broker_evicted_connections_total", factory: factory).increment(by: 0)
        return registry.emitToString()
    }
}
