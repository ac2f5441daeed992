import CSystemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A command run to its end (`keygen --tpm2-persist` runs tpm2-tools): what it wrote to its
/// standard error and how it ended. Its standard output is discarded; it inherits no descriptor
/// of ours beyond those.
package enum ChildProcess {
    /// Runs `path` with `arguments` and `environment`, and waits for it.
    package static func run(_ path: String, arguments: [String], environment: [String: String]) throws(SystemError) -> (status: Int32, errors: String) {
        var pipeEnds: [Int32] = [-1, -1]
        guard pipe(&pipeEnds) == 0 else { throw SystemError("pipe") }
        for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        defer { if pipeEnds[0] >= 0 { close(pipeEnds[0]) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, pipeEnds[1], 2)
        _ = CSystemShims_spawnClosesFrom(&actions, 3)
        let argv = ([path] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var child: pid_t = 0
        let started = posix_spawn(&child, path, &actions, nil, argv, envp)
        close(pipeEnds[1])
        guard started == 0 else { throw SystemError("posix_spawn \(path)", errno: started) }
        var said: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(pipeEnds[0], $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            said.append(contentsOf: chunk[0..<count])
        }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which Swift does not import: the low 7 bits are the signal.
        let exited = status & 0x7F == 0
        return (exited ? (status >> 8) & 0xFF : 128 + (status & 0x7F), String(decoding: said, as: UTF8.self))
    }
}
