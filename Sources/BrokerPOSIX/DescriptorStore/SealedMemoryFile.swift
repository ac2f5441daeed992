import CSystemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A file in memory that nobody can change once it is made: a memfd (`MFD_CLOEXEC |
/// MFD_ALLOW_SEALING`), written whole, then sealed against write, grow, shrink and further
/// seals. What the daemon hands to systemd's file descriptor store; it never touches a file
/// system, and a reader can trust that it was not changed after it was sealed.
package enum SealedMemoryFile {
    /// Why a descriptor handed back is not one to read.
    package struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        package let reason: String
        package var description: String { reason }
    }

    /// A new sealed memory file named `name` (as `/proc/PID/fd` shows it: `memfd:NAME`) holding
    /// `contents`. The caller owns the descriptor.
    package static func make(name: String, contents: [UInt8]) throws(SystemError) -> Int32 {
        let fd = CSystemShims_sealableMemoryFile(name)
        guard fd >= 0 else { throw SystemError("memfd_create") }
        do {
            var written = 0
            while written < contents.count {
                let count = try contents.withUnsafeBytes { bytes in
                    try retryingEINTR("write") { write(fd, bytes.baseAddress! + written, bytes.count - written) }
                }
                written += count
            }
            guard CSystemShims_addSeals(fd, CSystemShims_SEALS_IMMUTABLE) == 0 else { throw SystemError("fcntl(F_ADD_SEALS)") }
            return fd
        } catch let error as SystemError {
            close(fd)
            throw error
        } catch {
            close(fd)
            throw SystemError("write", errno: EIO)
        }
    }

    /// The seals on `fd`; nil for a descriptor that takes none (not a memfd).
    package static func seals(_ fd: Int32) -> Int32? {
        let seals = CSystemShims_getSeals(fd)
        return seals < 0 ? nil : seals
    }

    /// Whether `seals` fix a file's contents: no write, grow or shrink.
    package static func isFixed(_ seals: Int32) -> Bool {
        seals & CSystemShims_SEALS_CONTENTS == CSystemShims_SEALS_CONTENTS
    }

    /// The whole contents of `fd`, read from its start, when it is a sealed memory file of at most
    /// `limit` bytes: a descriptor that is not sealed could have been changed by whoever else
    /// holds it, and is refused.
    package static func read(_ fd: Int32, limit: Int) -> Result<[UInt8], Refusal> {
        guard let seals = seals(fd) else { return .failure(Refusal(reason: "it is not a sealed memory file (it takes no seals)")) }
        guard isFixed(seals) else { return .failure(Refusal(reason: "it is not sealed against writing (seals \(seals))")) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { return .failure(Refusal(reason: "fstat: \(SystemError("fstat"))")) }
        let size = Int(status.st_size)
        guard size <= limit else { return .failure(Refusal(reason: "it holds \(size) bytes, more than the \(limit) read")) }
        var contents = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let count = contents.withUnsafeMutableBytes { bytes in pread(fd, bytes.baseAddress! + done, size - done, off_t(done)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return .failure(Refusal(reason: "it could not be read: \(SystemError("pread"))")) }
            done += count
        }
        return .success(contents)
    }
}
