public import Foundation

/// A long-running program (the emulator, later the daemon) started by a test, with its output
/// collected in files that the test can wait on.
public final class RunningProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched through its own thread-safe methods.
    private let process: Process
    private let scratch: TemporaryDirectory
    private let outURL: URL
    private let errURL: URL

    /// Starts `executable` with `arguments`.
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil) throws {
        scratch = try TemporaryDirectory(prefix: "proc")
        outURL = scratch.url.appendingPathComponent("stdout")
        errURL = scratch.url.appendingPathComponent("stderr")
        _ = FileManager.default.createFile(atPath: outURL.path, contents: nil)
        _ = FileManager.default.createFile(atPath: errURL.path, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: outURL)
        process.standardError = try FileHandle(forWritingTo: errURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }

    /// The process id.
    public var pid: Int32 { process.processIdentifier }

    /// Everything written to standard output so far.
    public var output: String { (try? String(contentsOf: outURL, encoding: .utf8)) ?? "" }
    /// Everything written to standard error so far.
    public var errorOutput: String { (try? String(contentsOf: errURL, encoding: .utf8)) ?? "" }

    /// Waits until standard output contains `text`; throws with what it did print after `timeout`.
    @discardableResult
    public func waitForOutput(containing text: String, timeout: Duration = .seconds(20)) async throws -> String {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            let current = output
            if current.contains(text) { return current }
            if !process.isRunning {
                throw TestSupportError("the process exited (\(process.terminationStatus)) before printing \(text): \(current) \(errorOutput)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSupportError("no \(text) after \(timeout): \(output) \(errorOutput)")
    }

    /// Sends `signal` and waits for the exit status.
    @discardableResult
    public func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async throws -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        let end = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > end {
                kill(process.processIdentifier, SIGKILL)
                throw TestSupportError("the process did not stop within \(timeout) of signal \(signal)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }
}
