package import Foundation

/// Runs an external program (openssl, the broker's own executable) the way a user would.
package struct Command: Sendable {
    /// What a finished command left behind.
    package struct Result: Sendable {
        /// The exit status.
        package var status: Int32
        /// Everything written to standard output.
        package var stdout: Data
        /// Everything written to standard error.
        package var stderr: Data

        /// Standard output as text.
        package var output: String { String(decoding: stdout, as: UTF8.self) }
        /// Standard error as text.
        package var errorOutput: String { String(decoding: stderr, as: UTF8.self) }
    }

    /// Runs `executable` (looked up on `$PATH` unless it holds a `/`) with `arguments`, feeding
    /// `input` on standard input, and waits for it to finish. Spawned with posix_spawn and reaped
    /// with waitpid (see `RunningProcess`), on a thread of its own: waiting on Swift's
    /// cooperative pool (two threads on a two-core machine) would stall every other test in the
    /// process, and the in-process emulator's 10-second grant window with them. At most
    /// `gate`'s count run at once: the suites together would otherwise start dozens of
    /// processes side by side, and every deadline in the run would be missed.
    @discardableResult
    package static func run(
        _ executable: String,
        _ arguments: [String],
        input: Data? = nil,
        environment: [String: String]? = nil,
        currentDirectory: URL? = nil
    ) async throws -> Result {
        try await gate.withPermit {
            try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(
                        with: Swift.Result {
                            try runBlocking(executable, arguments, input: input, environment: environment, currentDirectory: currentDirectory)
                        })
                }
            }
        }
    }

    /// How many commands run at once: one more than the machine's cores.
    static let gate = AsyncGate(permits: ProcessInfo.processInfo.activeProcessorCount + 1)

    /// `run`, waiting on the calling thread: for the few callers that are not async.
    @discardableResult
    package static func runBlocking(
        _ executable: String,
        _ arguments: [String],
        input: Data? = nil,
        environment: [String: String]? = nil,
        currentDirectory: URL? = nil
    ) throws -> Result {
        let scratch = try TemporaryDirectory(prefix: "cmd")
        let stdinPath = try scratch.write("stdin", input ?? Data())
        let path = executable.contains("/") ? executable : try Self.which(executable)
        let process = try RunningProcess(path, arguments, environment: environment, stdinPath: stdinPath, currentDirectory: currentDirectory?.path)
        let status = process.waitForExit()
        return Result(status: status, stdout: process.outputData, stderr: process.errorData)
    }

    /// The full path of `name` on `$PATH`.
    package static func which(_ name: String) throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        throw TestSupportError("\(name) is not on PATH (\(path))")
    }

    /// Runs `openssl` and fails with its standard error unless it exits 0.
    @discardableResult
    package static func openssl(_ arguments: String..., input: Data? = nil) async throws -> Result {
        try checked(arguments, try await run("openssl", arguments, input: input))
    }

    /// `openssl`, waiting on the calling thread (`runBlocking`).
    @discardableResult
    package static func opensslBlocking(_ arguments: String..., input: Data? = nil) throws -> Result {
        try checked(arguments, try runBlocking("openssl", arguments, input: input))
    }

    private static func checked(_ arguments: [String], _ result: Result) throws -> Result {
        guard result.status == 0 else {
            throw TestSupportError("openssl \(arguments.joined(separator: " ")) exited \(result.status): \(result.errorOutput)")
        }
        return result
    }
}

/// A failure in the test scaffolding itself.
package struct TestSupportError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// A directory under the system's temporary directory, removed when the value is released.
package final class TemporaryDirectory: Sendable {
    /// The directory.
    package let url: URL

    /// Creates a new, empty directory with mode 0700.
    package init(prefix: String = "broker-test") throws {
        let base = FileManager.default.temporaryDirectory
        url = base.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// The path of `name` inside the directory.
    package func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    /// Writes `contents` to `name` with the given mode and returns its path.
    @discardableResult
    package func write(_ name: String, _ contents: String, mode: Int = 0o600) throws -> String {
        try write(name, Data(contents.utf8), mode: mode)
    }

    /// Writes `contents` to `name` with the given mode and returns its path.
    @discardableResult
    package func write(_ name: String, _ contents: Data, mode: Int = 0o600) throws -> String {
        let target = path(name)
        try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(to: URL(fileURLWithPath: target))
        try FileManager.default.setAttributes([.posixPermissions: mode], ofItemAtPath: target)
        return target
    }

    deinit {
        try? FileManager.default.removeItem(at: url)
    }
}
