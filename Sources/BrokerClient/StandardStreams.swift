#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes one line to standard error in a single write(2), so lines from several threads never
/// interleave.
package func printError(_ line: String) {
    writeAll(2, line + "\n")
}

/// Writes text to standard output at once, unbuffered: output that other programs wait for (the
/// emulator's address) must not sit in a buffer.
package func printNow(_ text: String) {
    writeAll(1, text.hasSuffix("\n") ? text : text + "\n")
}

private func writeAll(_ descriptor: Int32, _ text: String) {
    writeAll(descriptor, Array(text.utf8))
}

/// Writes every byte of `bytes`, however many write(2) calls it takes.
func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
    var offset = 0
    while offset < bytes.count {
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + offset, $0.count - offset) }
        if written < 0 {
            if errno == EINTR { continue }
            return
        }
        offset += written
    }
}
