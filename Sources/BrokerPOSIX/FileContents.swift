#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reading a file whole, with errno kept for the message (`EACCES` and `ENOENT` each have their
/// own words and fix in the callers).
package enum FileContents {
    /// The first `limit` bytes of the file at `path` (all of it when it is shorter); the caller
    /// wipes them when they are secret.
    package static func read(_ path: String, limit: Int = .max) throws(SystemError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SystemError("open") }
        defer { close(descriptor) }
        return try read(descriptor: descriptor, limit: limit)
    }

    /// The first `limit` bytes `descriptor` gives before its end (`api --data @-` reads standard
    /// input so).
    package static func read(descriptor: Int32, limit: Int = .max) throws(SystemError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        defer { chunk.withUnsafeMutableBytes { explicit_bzero($0.baseAddress!, $0.count) } }
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, min($0.count, limit - bytes.count)) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw SystemError("read") }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
}
