import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A pipe whose reading end the test holds: the log destination that stops reading (a stalled
/// journald) until the test drains it.
package final class TestPipe: @unchecked Sendable {
    // @unchecked: one test uses one pipe; the descriptors never change.
    package let readEnd: Int32
    package let writeEnd: Int32

    /// A pipe; with `size`, its buffer is set to that many bytes (F_SETPIPE_SZ; the kernel rounds
    /// up to a page).
    package init(size: Int? = nil) throws {
        var ends: [Int32] = [0, 0]
        // Close-on-exec before any process is spawned (`RunningProcess.spawnLock`; Glibc's module
        // has no pipe2): a process another test spawned in between would keep the reading end
        // open for its whole life, and a write to a pipe whose reader the test closed would then
        // succeed instead of failing with EPIPE.
        let made = RunningProcess.spawnLock.withLock { () -> Bool in
            guard pipe(&ends) == 0 else { return false }
            _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
            return true
        }
        guard made else { throw TestSupportError("pipe: \(String(cString: strerror(errno)))") }
        readEnd = ends[0]
        writeEnd = ends[1]
        // A write after the reading end is closed must fail, not kill the test runner.
        signal(SIGPIPE, SIG_IGN)
        if let size {
            let setPipeSize: Int32 = 1031  // F_SETPIPE_SZ
            _ = fcntl(writeEnd, setPipeSize, Int32(size))
        }
    }

    // The writing end stays open: a sink's writer thread may still be about to write to it, and
    // a closed descriptor's number could by then belong to another file. With the reading end
    // closed, its writes fail with EPIPE.
    deinit {
        close(readEnd)
    }

    /// Fills the pipe's buffer, so that the next write blocks until the test reads.
    package func fill() {
        let flags = fcntl(writeEnd, F_GETFL)
        _ = fcntl(writeEnd, F_SETFL, flags | O_NONBLOCK)
        let filler = [UInt8](repeating: UInt8(ascii: "#"), count: 4096)
        while filler.withUnsafeBytes({ write(writeEnd, $0.baseAddress, $0.count) }) > 0 {}
        _ = fcntl(writeEnd, F_SETFL, flags)
    }

    /// Reads what arrives until `done` holds for everything read so far (filler excluded) or
    /// `timeout` passes; returns it.
    package func read(until done: (String) -> Bool, timeout: Duration = .seconds(10)) -> String {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            let text = String(decoding: bytes.filter { $0 != UInt8(ascii: "#") }, as: UTF8.self)
            if done(text) { return text }
            var ready = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 50) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { Glibc.read(readEnd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes.append(contentsOf: buffer[0..<count])
        }
        return String(decoding: bytes.filter { $0 != UInt8(ascii: "#") }, as: UTF8.self)
    }
}
