import BrokerConfig
import BrokerPOSIX
import BrokerTokens
import FoundationEssentials
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
            Counter(label: MetricName.requests, dimensions: [("route", route), ("status", "\(status)")], factory: factory)
        }.increment()
    }

    func tokenHandedOut(profile: String) {
        counter(CounterKey(label: "tokens", first: profile, second: 0)) {
            Counter(label: MetricName.tokensServed, dimensions: [("profile", profile)], factory: factory)
        }.increment()
    }

    /// A gateway request answered: `status` is Altinn's code, or nil for the broker's own error.
    func gatewayRequest(profile: String, method: String, status: Int?) {
        let statusClass = status.map { "\($0 / 100)xx" } ?? "broker"
        counter(CounterKey(label: "gateway:" + method, first: profile, second: UInt(status.map { $0 / 100 } ?? 0))) {
            Counter(label: MetricName.gatewayRequests, dimensions: [("profile", profile), ("method", method), ("status", statusClass)], factory: factory)
        }.increment()
    }

    /// How long Altinn took to answer a gateway request.
    func gatewayUpstream(profile: String, took duration: Duration) {
        let (seconds, attoseconds) = duration.components
        let timer = timers.withLockedValue { timers in
            if let timer = timers[profile] { return timer }
            let made = Metrics.Timer(label: MetricName.gatewayUpstreamLatency, dimensions: [("profile", profile)], factory: factory)
            timers[profile] = made
            return made
        }
        timer.recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// The gateway's latency histograms, by profile: made once, not looked up per request.
    private let timers = NIOLockedValueBox([String: Metrics.Timer]())

    /// A gateway request sent again after a 401.
    func gatewayReplay(profile: String) {
        Counter(label: MetricName.gatewayReplays, dimensions: [("profile", profile)], factory: factory).increment()
    }

    func denied(profile: String) {
        Counter(label: MetricName.accessDenied, dimensions: [("profile", profile)], factory: factory).increment()
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
            Counter(label: MetricName.evictedConnections, factory: factory)
        }.increment()
    }

    private func recordOpen(_ count: Int) {
        openGauge.record(count)
    }

    private var openGauge: Metrics.Gauge {
        gauge.withLockedValue { gauge in
            if let gauge { return gauge }
            let made = Metrics.Gauge(label: MetricName.openConnections, factory: factory)
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
        Counter(label: MetricName.logLinesDropped, dimensions: [("stream", "log")], factory: factory).increment(by: Int64(log))
        Counter(label: MetricName.logLinesDropped, dimensions: [("stream", "audit")], factory: factory).increment(by: Int64(audit))
    }

    /// The exposition text, after setting the per-profile gauges from `snapshot`.
    func render(_ snapshot: BrokerSnapshot, droppedLines: LineSink.Drops = LineSink.Drops()) -> String {
        for entry in snapshot.profiles {
            let profile = entry.profile.name
            if let rotation = entry.rotation {
                Gauge(label: MetricName.keyRotationFailing, dimensions: [("profile", profile)], factory: factory).record(rotation.state == .failing ? 1 : 0)
                Counter(label: MetricName.keyRotationFailures, dimensions: [("profile", profile)], factory: factory).increment(by: 0)
                if let last = rotation.lastRotation {
                    Gauge(label: MetricName.keyRotationSecondsSinceLast, dimensions: [("profile", profile)], factory: factory)
                        .record(Int(snapshot.takenAt.timeIntervalSince(last)))
                }
            }
            for key in entry.status?.keys ?? [] {
                let dimensions = [("profile", profile), ("kid", key.kid)]
                Gauge(label: MetricName.keySigning, dimensions: dimensions, factory: factory).record(key.signs ? 1 : 0)
                Gauge(label: MetricName.keyLocation, dimensions: dimensions + [("location", key.location)], factory: factory).record(1)
                if let madeAt = key.madeAt {
                    Gauge(label: MetricName.keyAgeDays, dimensions: dimensions, factory: factory)
                        .record(Int((snapshot.takenAt.timeIntervalSince(madeAt) / 86_400).rounded(.down)))
                }
            }
            for state in Self.states {
                Gauge(label: MetricName.profileState, dimensions: [("profile", profile), ("state", state)], factory: factory)
                    .record(state == entry.state ? 1 : 0)
            }
            if let expiresAt = entry.status?.expiresAt {
                Gauge(label: MetricName.tokenExpirySeconds, dimensions: [("profile", profile)], factory: factory)
                    .record(Int(expiresAt.timeIntervalSince(snapshot.takenAt)))
            }
            if let certificate = entry.certificate {
                Gauge(label: MetricName.certificateExpiryDays, dimensions: [("name", "profile:\(profile)")], factory: factory)
                    .record(snapshot.daysLeft(certificate))
            }
        }
        for issuer in snapshot.platformAccessTokens {
            guard let certificate = issuer.certificate else { continue }
            Gauge(label: MetricName.certificateExpiryDays, dimensions: [("name", "platform_access_token:\(issuer.name)")], factory: factory)
                .record(snapshot.daysLeft(certificate))
        }
        recordOpen(openConnections)
        Counter(label: MetricName.evictedConnections, factory: factory).increment(by: 0)
        recordDropped(droppedLines)
        return registry.emitToString()
    }
}
