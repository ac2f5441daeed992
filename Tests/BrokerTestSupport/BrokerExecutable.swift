import Foundation

/// The built `maskinporten-broker` executable, run by the integration tests as a user would.
package enum BrokerExecutable {
    /// `$MASKINPORTEN_BROKER_BIN`, else the executable next to the test bundle (the same build
    /// directory `swift test` built both into).
    package static var path: String {
        get throws {
            if let explicit = ProcessInfo.processInfo.environment["MASKINPORTEN_BROKER_BIN"], !explicit.isEmpty {
                return explicit
            }
            var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            // The bundle may be a directory (`*.xctest/...`) on some platforms.
            while directory.path != "/" {
                let candidate = directory.appendingPathComponent("maskinporten-broker").path
                if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
                directory.deleteLastPathComponent()
            }
            throw TestSupportError("maskinporten-broker executable not found next to \(CommandLine.arguments[0]); set MASKINPORTEN_BROKER_BIN")
        }
    }

    /// `maskinporten-brokerd`, the executable with every command, next to `maskinporten-broker`
    /// (which hands it every command but `token` and `health`).
    package static var daemonPath: String {
        get throws {
            URL(fileURLWithPath: try path).deletingLastPathComponent().appendingPathComponent("maskinporten-brokerd").path
        }
    }

    /// A copy of `maskinporten-broker` at `destination`, written through a close-on-exec
    /// descriptor: a copy made by a descriptor without it (Foundation's `copyItem`) is inherited
    /// by every child another test spawns meanwhile, which keeps it open for writing for its whole
    /// life, and running the copy then fails with ETXTBSY.
    package static func copy(to destination: String) throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: try path))
        let descriptor = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o755)
        guard descriptor >= 0 else { throw TestSupportError("cannot create \(destination): \(String(cString: strerror(errno)))") }
        defer { close(descriptor) }
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                guard written > 0 else { throw TestSupportError("cannot write \(destination): \(String(cString: strerror(errno)))") }
                offset += written
            }
        }
    }

    /// Runs the executable with `arguments`.
    @discardableResult
    package static func run(_ arguments: [String], environment: [String: String]? = nil) async throws -> Command.Result {
        try await Command.run(path, arguments, environment: environment)
    }
}
