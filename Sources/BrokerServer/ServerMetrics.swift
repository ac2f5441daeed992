import BrokerPOSIX
import BrokerTokens
import Foundation
import Metrics
import NIOConcurrencyHelpers
package import Prometheus

/// The daemon's metrics, through swift-metrics into a swift-prometheus registry that `/metrics`
/// (and the optional TCP metrics listener) renders. Labels hold only route names, status codes
/// and configured names: never anything a caller sent. The token modules' own metrics (upstream calls,
/// latency, refresh failures) reach the same registry through `MetricsSystem`.
package final class ServerMetrics: Sendable {
    /// The registry rendered on `/metrics`.
    package let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    private let open = NIOLockedValueBox(0)

    /// Metrics in `registry`.
    package init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        self.factory = PrometheusMetricsFactory(registry: registry)
    }

    /// Counters already made, by label and dimension values: the request path looks them up
    /// instead of asking the factory (which builds and hashes the label set) on every request.
    private let counters = NIOLockedValueBox([CounterKey: Metrics.Counter]())

    private struct CounterKey: Hashable {
        var label: String
        var first: String
        var second: UInt
    }

    private func counter(_ key: CounterKey, make: () -> Metrics.Counter) -> Metrics.Counter {
        counters.withLockedValue { counters in
            if let counter = counters[key] { return counter }
            let counter = make()
            counters[key] = counter
            return counter
        }
    }

    func request(route: String, status: UInt) {
        counter(CounterKey(label: "requests", first: route, second: status)) {
            Counter(label: "maskinporten_broker_requests_total", dimensions: [("route", route), ("status", "\(status)")], factory: factory)
        }.increment()
    }

    func tokenHandedOut(profile: String) {
        counter(CounterKey(label: "tokens", first: profile, second: 0)) {
            Counter(label: "maskinporten_broker_tokens_served_total", dimensions: [("profile", profile)], factory: factory)
        }.increment()
    }

    func denied(profile: String) {
        Counter(label: "maskinporten_broker_access_denied_total", dimensions: [("profile", profile)], factory: factory).increment()
    }

    func connectionOpened() {
        recordOpen(
            open.withLockedValue {
                $0 += 1
                return $0
            })
    }
    func connectionClosed() {
        recordOpen(
            open.withLockedValue {
                $0 -= 1
                return $0
            })
    }

    func connectionRefused() {
        counter(CounterKey(label: "evicted", first: "", second: 0)) {
            Counter(label: "maskinporten_broker_evicted_connections_total", factory: factory)
        }.increment()
    }

    private func recordOpen(_ count: Int) {
        openGauge.record(count)
    }

    private var openGauge: Metrics.Gauge {
        gauge.withLockedValue { gauge in
            if let gauge { return gauge }
            let made = Metrics.Gauge(label: "maskinporten_broker_open_connections", factory: factory)
            gauge = made
            return made
        }
    }
    private let gauge = NIOLockedValueBox<Metrics.Gauge?>(nil)

    /// Open connections now.
    package var openConnections: Int { open.withLockedValue { $0 } }

    static let states = ["starting", "ready", "refreshing", "degraded", "failing", "unavailable"]

    /// Log lines dropped so far, as last rendered: the sink counts, the counters follow.
    private let droppedRendered = NIOLockedValueBox(LineSink.Drops())

    /// Brings `maskinporten_broker_log_lines_dropped_total` up to `drops` (the sink's own
    /// counts: dropping a line must not take the metrics' locks on a full buffer's path).
    private func recordDropped(_ drops: LineSink.Drops) {
        let (log, audit) = droppedRendered.withLockedValue { rendered in
            defer { rendered = drops }
            return (drops.log - min(drops.log, rendered.log), drops.audit - min(drops.audit, rendered.audit))
        }
        Counter(label: "maskinporten_broker_log_lines_dropped_total", dimensions: [("stream", "log")], factory: factory).increment(by: Int64(log))
        Counter(label: "maskinporten_broker_log_lines_dropped_total", dimensions: [("stream", "audit")], factory: factory).increment(by: Int64(audit))
    }

    /// The exposition text, after setting the per-profile gauges from the given snapshot.
    func render(
        profiles: [(name: String, state: String, expiresIn: Double?)], certificates: [(name: String, days: Int)] = [],
        keys: [(profile: String, key: KeyStatus)] = [], rotations: [(profile: String, status: KeyRotation.Status)] = [],
        droppedLines: LineSink.Drops = LineSink.Drops()
    ) -> String {
        for (profile, status) in rotations {
            Gauge(label: "maskinporten_broker_key_rotation_failing", dimensions: [("profile", profile)], factory: factory).record(
                status.state == .failing ? 1 : 0)
            Counter(label: "maskinporten_broker_key_rotation_failures_total", dimensions: [("profile", profile)], factory: factory).increment(by: 0)
            if let last = status.lastRotation {
                Gauge(label: "maskinporten_broker_key_rotation_seconds_since_last", dimensions: [("profile", profile)], factory: factory)
                    .record(Int(Date().timeIntervalSince(last)))
            }
        }
        for (profile, key) in keys {
            let dimensions = [("profile", profile), ("kid", key.kid)]
            Gauge(label: "maskinporten_broker_key_signing", dimensions: dimensions, factory: factory).record(key.signs ? 1 : 0)
            if let madeAt = key.madeAt {
                Gauge(label: "maskinporten_broker_key_age_days", dimensions: dimensions, factory: factory)
                    .record(Int((Date().timeIntervalSince(madeAt) / 86_400).rounded(.down)))
            }
        }
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
        recordDropped(droppedLines)
        return registry.emitToString()
    }
}
