package import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A long-running program (the emulator, the daemon) started by a test, with its output
/// collected in files that the test can wait on.
///
/// Started with posix_spawn and reaped with waitpid, not Foundation's `Process`: `Process`
/// watches a descriptor it leaves in the child, and programs that close every descriptor
/// before exec (systemd-socket-activate) make it wait forever.
package final class RunningProcess: @unchecked Sendable {
    /// Held while a process is spawned, and by test code that makes a descriptor and then marks
    /// it close-on-exec (`TestPipe`): no child is spawned between the two, to inherit it.
    package static let spawnLock = NSLock()

    // @unchecked: the exit status is guarded by `lock`.
    package let pid: pid_t
    private let scratch: TemporaryDirectory
    private let outPath: String
    private let errPath: String
    private let lock = NSLock()
    private var exitStatus: Int32?

    /// Starts `executable` (a path) with `arguments` and `environment` (default: this
    /// process's), standard input from `stdinPath` (default /dev/null); standard output and error
    /// into files the test reads, or both into `outputDescriptor` (a pipe the test holds).
    package init(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdinPath: String = "/dev/null", currentDirectory: String? = nil,
        outputDescriptor: Int32? = nil
    ) throws {
        scratch = try TemporaryDirectory(prefix: "proc")
        outPath = scratch.path("stdout")
        errPath = scratch.path("stderr")
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        if let outputDescriptor {
            posix_spawn_file_actions_adddup2(&actions, outputDescriptor, 1)
            posix_spawn_file_actions_adddup2(&actions, outputDescriptor, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        }
        // Nothing of the test process's but the three standard streams: a descriptor inherited
        // while it was open in the test process holds what it leads to. A TPM simulator serves
        // one connection at a time, and its client library's sockets are not close-on-exec: an
        // emulator started mid-command kept one, and every TPM test after it waited for good.
        SpawnActions.closeInherited(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The child starts with default signal handling and an empty mask, whatever the test
        // process has set up.
        var defaults = sigset_t()
        sigfillset(&defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        // A working directory through the shell (posix_spawn's chdir action is not exported).
        let command = currentDirectory.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0, executable] + arguments } ?? [executable] + arguments
        let argv = command.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for variable in env { free(variable) } }
        var child: pid_t = 0
        var result = Self.spawnLock.withLock { posix_spawn(&child, command[0], &actions, &attributes, argv, env) }
        // A binary a test has just copied can be busy for a moment: another test's child, forked
        // while the copy was open for writing, holds that descriptor until it execs.
        for _ in 0..<50 where result == ETXTBSY {
            usleep(20_000)
            result = Self.spawnLock.withLock { posix_spawn(&child, command[0], &actions, &attributes, argv, env) }
        }
        guard result == 0 else { throw TestSupportError("posix_spawn \(executable): \(String(cString: strerror(result)))") }
        pid = child
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            _ = reap(blocking: true)
        }
    }

    /// Waits for the process to exit and returns its status.
    package func waitForExit() -> Int32 {
        reap(blocking: true) ?? -1
    }

    /// Everything written to standard output so far, as bytes.
    package var outputData: Data { (try? Data(contentsOf: URL(fileURLWithPath: outPath))) ?? Data() }
    /// Everything written to standard error so far, as bytes.
    package var errorData: Data { (try? Data(contentsOf: URL(fileURLWithPath: errPath))) ?? Data() }

    /// Everything written to standard output so far.
    package var output: String { (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "" }
    /// Everything written to standard error so far.
    package var errorOutput: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }

    /// Whether the process is still running.
    package var isRunning: Bool { reap(blocking: false) == nil }

    /// The exit status once exited (128 + signal when killed by a signal).
    private func reap(blocking: Bool) -> Int32? {
        lock.lock()
        defer { lock.unlock() }
        if let exitStatus { return exitStatus }
        var status: Int32 = 0
        let result = waitpid(pid, &status, blocking ? 0 : WNOHANG)
        guard result == pid else { return nil }
        let low = status & 0x7f
        exitStatus = low == 0 ? (status >> 8) & 0xff : 128 + low
        return exitStatus
    }

    /// Waits until standard output contains `text`; throws with what it did print after `timeout`.
    @discardableResult
    package func waitForOutput(containing text: String, timeout: Duration = .seconds(20)) async throws -> String {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            let current = output
            if current.contains(text) { return current }
            if let status = reap(blocking: false) {
                throw TestSupportError("the process exited (\(status)) before printing \(text): \(current) \(errorOutput)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestSupportError("no \(text) after \(timeout): \(output) \(errorOutput)")
    }

    /// Sends `signal` and waits for the exit status.
    @discardableResult
    package func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async throws -> Int32 {
        if isRunning { kill(pid, signal) }
        let end = ContinuousClock.now + timeout
        while true {
            if let status = reap(blocking: false) { return status }
            if ContinuousClock.now > end {
                kill(pid, SIGKILL)
                _ = reap(blocking: true)
                throw TestSupportError("the process did not stop within \(timeout) of signal \(signal)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
