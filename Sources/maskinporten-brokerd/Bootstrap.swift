import BrokerClient
import BrokerPOSIX
import BrokerServer
import FoundationEssentials
import Logging
import Metrics
import Prometheus

#if canImport(Glibc)
    import Glibc
#endif

/// Where this process's log lines go: standard output, through a buffer with a writer thread of
/// its own (journald priorities under systemd, logfmt otherwise). Made at first use, once.
let logOutput: LineLogHandler.Output = {
    do {
        return try LineLogHandler.Output(format: LineLogHandler.detectFormat())
    } catch {
        printError("error: cannot start the log writer: \(error)")
        exit(1)
    }
}()

/// swift-log into `logOutput` at `level`. Lines still waiting when the process exits are
/// written first, for at most 2 s: a stalled destination delays the exit no longer than that.
func bootstrapLogging(level: Logger.Level) {
    // A log destination that goes away must not kill the daemon: its write fails with EPIPE
    // (and the lines are counted as dropped) instead of raising SIGPIPE.
    signal(SIGPIPE, SIG_IGN)
    let output = logOutput
    LoggingSystem.bootstrap { label in LineLogHandler(label: label, level: level, output: output) }
    atexit { logOutput.sink.flush(timeout: .seconds(2)) }
}

/// swift-metrics into one Prometheus registry, which `/metrics` renders.
func bootstrapMetrics() -> ServerMetrics {
    let registry = PrometheusCollectorRegistry()
    MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    return ServerMetrics(registry: registry)
}
