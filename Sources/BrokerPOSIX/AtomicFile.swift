#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A file written whole or not at all: a temporary file in the same directory (made 0600, owner
/// only, before a byte is in it), synced, then renamed or linked into place, and the directory
/// synced. No reader ever sees half a file, and no other user ever could read it.
///
/// Foundation's atomic writes are not used: on Linux they leave an empty
/// `/tmp/TemporaryDirectory.*` behind for every write.
package enum AtomicFile {
    /// Why the file could not be written.
    package struct Failure: Error, Sendable, CustomStringConvertible {
        /// What went wrong, naming the file or directory.
        package let description: String
        /// The file existed and `replacing` was not set.
        package let exists: Bool
    }

    /// Writes `bytes` to `path`. With `replacing`, an existing file is replaced (keeping its
    /// owner and group, when the writer may set them); without it, an existing file is never
    /// touched, not even in a race (`link(2)` fails if the name exists).
    package static func write(_ bytes: [UInt8], to path: String, replacing: Bool) throws(Failure) {
        let slash = path.utf8.lastIndex(of: UInt8(ascii: "/"))
        let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.utf8.index(after: $0)...]) } ?? path
        var template = Array((directory + "/." + name + ".XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw failure("cannot create a file in \(directory)") }
        let temporary = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var placed = false
        defer {
            if !placed { unlink(temporary) }
        }
        do {
            defer { close(fd) }
            var existing = stat()
            if replacing, stat(path, &existing) == 0 {
                // A file replaced by root keeps the owner it had (the service reading it).
                _ = fchown(fd, existing.st_uid, existing.st_gid)
            }
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else { throw failure("cannot write \(temporary)") }
                offset += written
            }
            guard fsync(fd) == 0 else { throw failure("cannot sync \(temporary)") }
        }
        if replacing {
            guard rename(temporary, path) == 0 else { throw failure("cannot put the file in place at \(path)") }
        } else {
            guard link(temporary, path) == 0 else {
                if errno == EEXIST { throw Failure(description: "\(path) exists", exists: true) }
                throw failure("cannot create \(path)")
            }
            unlink(temporary)
        }
        placed = true
        let directoryFD = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryFD >= 0 {
            fsync(directoryFD)
            close(directoryFD)
        }
    }

    private static func failure(_ what: String) -> Failure {
        Failure(description: "\(what): \(String(cString: strerror(errno)))", exists: false)
    }
}
