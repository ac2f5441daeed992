import ArgumentParser
import BrokerClient
import BrokerConfig
import BrokerCrypto
import BrokerDaemon
import BrokerPOSIX
import BrokerServer
import FoundationEssentials
import Logging
import MaskinportenEmulator
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// `dev`: the emulator and the daemon in one process, with a generated demo key and profile
/// `demo`: the first thing to run.
struct DevCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev",
        abstract: "Run the emulator and the daemon together with a demo key and profile \"demo\".",
        discussion:
            "Prints the socket path and a ready curl line. Everything lives in a private directory under $XDG_RUNTIME_DIR (or the temporary directory) that is removed on exit."
    )

    @Option(name: .long, help: ArgumentHelp("trace, debug, info, notice, warning, error or critical.", valueName: "level"))
    var logLevel: String = "notice"

    func run() async throws {
        signal(SIGHUP, SIG_IGN)
        ProcessHardening.apply()
        bootstrapLogging(level: Logger.Level(rawValue: logLevel) ?? .notice)
        let logger = Logger(label: "maskinporten-broker")
        let directory = try Self.makeDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }

        // The emulator, with a demo client whose key exists only in this directory.
        let server = try await EmulatorServer.bind(host: "127.0.0.1", port: 0, logger: logger)
        let emulator = server.emulator
        let socketPath = directory.appendingPathComponent("broker.sock").path
        let configPath: String
        do {
            configPath = try DemoSetup.write(in: directory, for: emulator, socketPath: socketPath)
        } catch {
            printError("error: cannot write the demo key and configuration in \(directory.path): \(error)")
            throw ExitCode(1)
        }

        let loaded = try LoadedConfiguration.load(path: configPath)
        let fd = try UnixListener.make(path: socketPath, mode: 0o600, group: nil)
        let daemon = try Daemon(
            configPath: configPath, loaded: loaded, listener: SocketServer.Listener(descriptor: fd, removeOnExit: socketPath),
            notifier: SystemdNotifier(environment: [:]), metrics: bootstrapMetrics(), output: logOutput, logger: logger
        )
        printNow(
            """
            maskinporten-broker dev: the daemon and a local Maskinporten + Altinn emulator, profile "demo"
              socket:    \(socketPath)
              config:    \(configPath)
              emulator:  \(emulator.altinnPlatform) (control API at /_emulator/)

            Get a token:
              curl --unix-socket \(socketPath) http://localhost/v1/token/demo
              \(CommandLine.arguments[0]) token demo --socket \(socketPath)

            Send a notification order through the gateway (the broker adds the token), then read its status:
              \(CommandLine.arguments[0]) api demo /notifications/api/v1/future/orders --socket \(socketPath) --data '\(Self.demoOrder)'
              \(CommandLine.arguments[0]) api demo /notifications/api/v1/orders/ORDER_ID/status --socket \(socketPath)

            Ctrl-C stops both and removes \(directory.path).
            """)
        let group = ServiceGroup(services: [EmulatorService(server: server)] + daemon.services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }

    /// An order to one made-up e-mail address, for the line `dev` prints.
    static let demoOrder =
        #"{"idempotencyId":"dev-1","recipient":{"recipientEmail":{"emailAddress":"kari@example.com","emailSettings":{"subject":"Hei","body":"Hello from the broker"}}}}"#

    /// A fresh private directory: `$XDG_RUNTIME_DIR/maskinporten-broker-dev-XXXX`, else the same
    /// under the temporary directory.
    static func makeDirectory() throws -> URL {
        let base = ProcessEnvironment.value("XDG_RUNTIME_DIR").flatMap { $0.isEmpty ? nil : $0 } ?? FileManager.default.temporaryDirectory.path
        var template = Array((URL(fileURLWithPath: base).appendingPathComponent("maskinporten-broker-dev-XXXXXX").path).utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ValidationError("cannot create a directory under \(base): \(String(cString: strerror(errno)))")
        }
        let url = URL(fileURLWithPath: String(cString: made))
        // A socket path must stay under 108 bytes.
        guard url.path.utf8.count < 90 else {
            throw ValidationError("\(url.path) is too long for a Unix socket path; set XDG_RUNTIME_DIR to a shorter directory")
        }
        return url
    }
}
