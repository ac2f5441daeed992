package import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A TPM 2.0 simulator (Debian's `swtpm`) on a Unix socket of its own, for keys held by OpenSSL's
/// `tpm2` provider. The provider connects once per process and keeps its connection, and swtpm
/// serves one client at a time: so one simulator serves the whole test process (`shared`), and
/// tests that need a TPM of their own, or `openssl` beside the process, start another.
package final class SoftwareTPM: @unchecked Sendable {
    // @unchecked: `running` is touched only with `lock` held.
    package let directory: URL
    private let lock = NSLock()
    /// The shell that runs the simulator and ends it when the test process ends; nil while
    /// stopped.
    private var running: RunningProcess?

    /// With a resource manager in front (tpm2-abrmd on a D-Bus of its own), as the kernel's
    /// /dev/tpmrm0 is on a host: it swaps keys in and out, so more than three can be loaded.
    package let resourceManager: Bool

    /// The TCTI string the provider and the tools take (`TPM2OPENSSL_TCTI`, `TPM2TOOLS_TCTI`).
    package var tcti: String { resourceManager ? "tabrmd:bus_type=session" : "swtpm:path=\(socket)" }
    /// What a process using `tcti` needs in its environment: the resource manager's bus.
    package var environment: [String: String] {
        resourceManager ? ["DBUS_SESSION_BUS_ADDRESS": "unix:path=\(directory.path)/bus"] : [:]
    }
    private var socket: String { directory.appendingPathComponent("sock").path }

    /// The simulator the test process's provider talks to, started at first use.
    package static let shared: SoftwareTPM = {
        do { return try SoftwareTPM() } catch { fatalError("swtpm could not start (apt install swtpm swtpm-tools tpm2-openssl): \(error)") }
    }()

    /// The shared simulator, for one test at a time. Without the kernel's resource manager a TPM
    /// holds three objects: each key a test keeps loaded counts, and loading a key from its file
    /// takes two for a moment (the storage key is made for it). Two tests at once ran out.
    package static func sharedAlone<T>(_ body: (SoftwareTPM) async throws -> T) async rethrows -> T {
        try await turns.withPermit { try await body(shared) }
    }
    private static let turns = AsyncGate(permits: 1)

    /// Starts a simulator with a fresh state in a directory of its own; with `resourceManager`,
    /// behind tpm2-abrmd.
    package init(resourceManager: Bool = false) throws {
        self.resourceManager = resourceManager
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("swtpm-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    /// Starts the simulator on the state it had: keys wrapped by it load again, keys that were
    /// loaded into it are gone, as after a real TPM's reset.
    package func start() throws {
        try? FileManager.default.removeItem(atPath: socket)
        try? FileManager.default.removeItem(atPath: socket + ".ctrl")
        // Ends with the test process (it has no other way to learn it is gone: its TCTI connects
        // anew for each command, so swtpm's --terminate would end it after the first).
        let swtpm =
            "swtpm socket --tpm2 --server type=unixio,path=\(socket) --ctrl type=unixio,path=\(socket).ctrl --tpmstate dir=\(directory.path)"
            + " --flags not-need-init,startup-clear"
        // The resource manager, on a session bus of its own, waits for the simulator's socket.
        let manager =
            resourceManager
            ? "rm -f \(directory.path)/bus; dbus-daemon --session --nofork --address=unix:path=\(directory.path)/bus & echo $! >> \(directory.path)/pid;"
                + " while [ ! -S \(socket).ctrl ] || [ ! -S \(directory.path)/bus ]; do sleep 0.05; done;"
                + " DBUS_SESSION_BUS_ADDRESS=unix:path=\(directory.path)/bus tpm2-abrmd --session --allow-root --tcti=swtpm:path=\(socket) & echo $! >> \(directory.path)/pid;"
            : ""
        let process = try RunningProcess(
            "/bin/bash",
            [
                "-c",
                "\(swtpm) & simulator=$!; echo $simulator > \(directory.path)/pid; \(manager) trap 'kill $(cat \(directory.path)/pid)' EXIT TERM; while kill -0 \(getpid()) 2>/dev/null && kill -0 $simulator 2>/dev/null; do sleep 0.2; done",
            ],
            environment: ProcessInfo.processInfo.environment)
        lock.withLock { running = process }
        let end = ContinuousClock.now + .seconds(10)
        while access(socket, F_OK) != 0 || access(socket + ".ctrl", F_OK) != 0 {
            guard ContinuousClock.now < end else { throw TestSupportError("swtpm did not make its socket \(socket): \(process.output)\(process.errorOutput)") }
            usleep(10_000)
        }
        // The resource manager answers once it has taken its name on the bus.
        while resourceManager {
            let probe = try RunningProcess(
                "/usr/bin/tpm2_getcap", ["handles-persistent"],
                environment: ProcessInfo.processInfo.environment.merging(environment.merging(["TPM2TOOLS_TCTI": tcti]) { $1 }) { $1 })
            if probe.waitForExit() == 0 { break }
            guard ContinuousClock.now < end else { throw TestSupportError("tpm2-abrmd did not answer: \(process.output)\(process.errorOutput)") }
            usleep(50_000)
        }
    }

    /// Kills the simulator outright, as a TPM that stops answering: its sockets go with it.
    package func kill() {
        let text = (try? String(contentsOf: directory.appendingPathComponent("pid"), encoding: .utf8)) ?? ""
        for pid in text.split(separator: "\n").compactMap({ Int32($0.trimmingCharacters(in: .whitespaces)) }) {
            Glibc.kill(pid, SIGKILL)
        }
        let stopped = lock.withLock {
            defer { running = nil }
            return running
        }
        if let process = stopped {
            _ = process.waitForExit()
        }
        try? FileManager.default.removeItem(atPath: socket)
        try? FileManager.default.removeItem(atPath: socket + ".ctrl")
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }
}
