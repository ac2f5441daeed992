import BrokerServer
import Logging
import Metrics
import Prometheus

/// Log lines on standard error: journald priorities under systemd, logfmt otherwise.
func bootstrapLogging(level: Logger.Level) {
    let format = LineLogHandler.detectFormat()
    LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level, format: format) }
}

/// swift-metrics into one Prometheus registry, which `/metrics` renders.
func bootstrapMetrics() -> ServerMetrics {
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return ServerMetrics(registry: registry)
}
