import BrokerTestSupport
import Foundation
import Logging
import ServiceLifecycle

@testable import BrokerConfig
@testable import BrokerDaemon
@testable import BrokerPOSIX
@testable import BrokerServer

/// `serve`'s services run in the test process, on the same socket path and with the same
/// configuration file as the daemon process would: the harness's in-process mode. Everything a
/// request meets is the daemon's (the fast path's threads, NIO, the router, the token broker, the
/// audit trail); what is left out is what makes a process (signals, systemd's notifications,
/// process hardening, the environment), which the live mode keeps for the tests of those.
final class InProcessDaemon: Sendable {
    private let group: ServiceGroup
    private let run: Task<Void, Never>
    /// Where its log lines go (the daemon's standard output).
    let logPath: String

    private init(group: ServiceGroup, run: Task<Void, Never>, logPath: String) {
        self.group = group
        self.run = run
        self.logPath = logPath
    }

    /// Loads `configPath` as `serve` does, then runs the daemon's services until `stop()`.
    static func start(configPath: String, logPath: String, limits: ServerLimits = ServerLimits()) throws -> InProcessDaemon {
        let loaded = try LoadedConfiguration.load(path: configPath)
        let descriptor = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw TestSupportError("cannot open \(logPath)") }
        let output = try LineLogHandler.Output(format: .logfmt, descriptor: descriptor)
        let level = Logger.Level(rawValue: loaded.configuration.logLevel) ?? .info
        let logger = Logger(label: "maskinporten-broker") { LineLogHandler(label: $0, level: level, output: output) }
        let group = try Daemon.serviceGroup(
            configPath: configPath, loaded: loaded, version: "in-process", limits: limits, output: output, logger: logger, gracefulShutdownSignals: [])
        // The group runs until stop(): the test's own task, ended by graceful shutdown.
        let run = Task {
            do { try await group.run() } catch { logger.error("the in-process daemon ended", metadata: ["error": "\(error)"]) }
            output.sink.flush(timeout: .seconds(2))
            close(descriptor)
        }
        return InProcessDaemon(group: group, run: run, logPath: logPath)
    }

    /// Its log lines so far.
    var logs: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// Graceful shutdown, as SIGTERM would start it, and its end.
    func stop() async {
        await group.triggerGracefulShutdown()
        await run.value
    }
}
