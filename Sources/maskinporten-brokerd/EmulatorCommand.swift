import ArgumentParser
import BrokerClient
import FoundationEssentials
import Logging
import MaskinportenEmulator
import NIOCore
import ServiceLifecycle
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// `emulator`: the local Maskinporten + Altinn exchange, for development and tests.
struct EmulatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Run the local Maskinporten + Altinn exchange emulator.",
        discussion: """
            Checks grants by the rules of Maskinporten's JWT grant, issues signed tokens, and exchanges \
            them for Altinn tokens. Control API (JSON): POST /_emulator/clients, POST /_emulator/faults/{token|exchange}, \
            DELETE /_emulator/faults, GET|PUT /_emulator/settings, GET /_emulator/stats, POST /_emulator/stats/reset.
            It listens on loopback only: it has no authentication. --any-address lets it listen elsewhere, \
            for test networks (a proxy, containers); --tls-certificate and --tls-key make it serve HTTPS.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Where to listen.", valueName: "host:port"))
    var listen: String = "127.0.0.1:18080"

    @Option(name: .long, help: ArgumentHelp("Keep the signing key and registered clients here across restarts.", valueName: "dir"))
    var stateDir: String?

    @Flag(name: .long, help: "Allow --listen on an address other than loopback (test networks only: the emulator has no authentication).")
    var anyAddress = false

    @Option(
        name: .long, help: ArgumentHelp("The host name in the emulator's URLs (its issuer), when clients use another name than --listen's.", valueName: "name"))
    var publicHost: String?

    @Option(name: .long, help: ArgumentHelp("Serve HTTPS with this PEM certificate (chain), with --tls-key.", valueName: "file"))
    var tlsCertificate: String?

    @Option(name: .long, help: ArgumentHelp("The PEM private key of --tls-certificate.", valueName: "file"))
    var tlsKey: String?

    func validate() throws {
        _ = try Self.parseListen(listen, anyAddress: anyAddress)
        guard (tlsCertificate == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-certificate and --tls-key go together: give both to serve HTTPS, or neither")
        }
    }

    static func parseListen(_ text: String, anyAddress: Bool = false) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen must be HOST:PORT, for example 127.0.0.1:18080")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard anyAddress || host == "localhost" || host == "::1" || host.hasPrefix("127.") else {
            throw ValidationError(
                "the emulator issues tokens to anyone who asks: it listens on loopback only (127.0.0.1, ::1, localhost), not \(host); --any-address allows it on a test network"
            )
        }
        return (host, port)
    }

    func run() async throws {
        bootstrapLogging(level: .info)
        let logger = Logger(label: "maskinporten-emulator")
        let (host, port) = try Self.parseListen(listen, anyAddress: anyAddress)
        let tls = try tlsCertificate.flatMap { certificate in
            try tlsKey.map { key in
                do {
                    return try EmulatorServer.tlsContext(certificateFile: certificate, keyFile: key)
                } catch {
                    printError("error: --tls-certificate \(certificate) and --tls-key \(key) cannot be used: \(error)")
                    throw ExitCode(1)
                }
            }
        }
        let server: EmulatorServer
        do {
            server = try await EmulatorServer.bind(
                host: host, port: port, stateDirectory: stateDir.map { URL(fileURLWithPath: $0) }, tls: tls, publicHost: publicHost, logger: logger)
        } catch let error as IOError {
            // NIO's own text names its function and repeats errno; an operator needs the reason.
            let reason = String(cString: strerror(error.errnoCode))
            let hint =
                error.errnoCode == EADDRINUSE
                ? ": another program (an emulator still running?) listens there; stop it, or choose another port with --listen \(host.contains(":") ? "[\(host)]" : host):\(port < 65535 ? port + 1 : port - 1)"
                : ""
            printError("error: the emulator could not listen on \(listen): \(reason)\(hint)")
            throw ExitCode(1)
        } catch {
            printError("error: the emulator could not listen on \(listen): \(error)")
            throw ExitCode(1)
        }
        let emulator = server.emulator
        printNow(
            """
            maskinporten-emulator listening on \(emulator.altinnPlatform)
              issuer (aud):    \(emulator.issuer)
              token endpoint:  \(emulator.tokenEndpoint)
              altinn platform: \(emulator.altinnPlatform)
              control API:     \(emulator.altinnPlatform)/_emulator/
              clients:         \(emulator.clients.count) registered\(stateDir.map { " (state in \($0))" } ?? "")
            """)
        let group = ServiceGroup(
            services: [EmulatorService(server: server)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
        try await group.run()
    }
}

/// The emulator server as a service.
struct EmulatorService: Service {
    let server: EmulatorServer

    func run() async throws {
        try await cancelWhenGracefulShutdown {
            try await server.run()
        }
    }
}
