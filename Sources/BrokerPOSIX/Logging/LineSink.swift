#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Log and audit lines on their way to standard output (journald under systemd): copied into a
/// bounded buffer by whoever logs, and written in batches by a thread of their own.
///
/// Why: a write to a pipe or to journald's stream socket blocks while the reader does not read
/// (journald stalled, a pipe nobody drains). Lines used to be written by the thread that logged
/// them, so a stalled journald stopped the serving after a pipe's worth of lines, then `/healthz`,
/// then the watchdog, and systemd's restart met the same stall. Here logging a line is a copy
/// under a lock. When the buffer is full the line is dropped and counted, and once the
/// destination takes lines again the writer adds one line saying how many were lost.
///
/// The buffer holds `capacity` bytes of waiting lines; the writer takes all of them at once and
/// writes them with one `write(2)` while new lines fill an empty buffer, so at most twice
/// `capacity` is held. Log lines may fill three quarters of it: the last quarter is kept for
/// audit lines, so a burst of ordinary lines cannot make the audit trail drop (nor, with
/// `audit.on_overflow: refuse`, stop the tokens).
package final class LineSink: Sendable {
    /// Which count a dropped line goes to.
    package enum Stream: UInt8, Sendable {
        /// Ordinary log lines.
        case log = 0
        /// Audit lines: tokens handed out, access denied.
        case audit = 1
    }

    /// Lines dropped, by stream.
    package struct Drops: Sendable, Equatable {
        /// Ordinary log lines.
        package var log: UInt64
        /// Audit lines.
        package var audit: UInt64

        /// Counts.
        package init(log: UInt64 = 0, audit: UInt64 = 0) {
            self.log = log
            self.audit = audit
        }

        /// Both together.
        package var total: UInt64 { log + audit }

        subscript(stream: Stream) -> UInt64 {
            get { stream == .log ? log : audit }
            set { if stream == .log { log = newValue } else { audit = newValue } }
        }
    }

    /// 256 KiB: about 1,000 audit lines of 250 bytes. With folding, a busy daemon writes an audit
    /// line per new client process, not per request, so this covers journald stalls of many
    /// seconds at hundreds of new processes a second, on top of what the pipe or socket itself
    /// holds (64 KiB for a pipe, about 200 KiB for journald's stream socket). It is memory that is
    /// only touched when lines wait, and it bounds what a stall can cost: 512 KiB with the batch
    /// in flight, next to an idle daemon's 24 MiB.
    package static let defaultCapacity = 256 * 1024

    /// Longer lines are cut (at a UTF-8 boundary) so that one line cannot take the buffer;
    /// journald's own line limit is 48 KiB.
    package static let maximumLineBytes = 16 * 1024

    /// Per line in the buffer: stream (1 byte), wall-clock seconds (8) and nanoseconds (4),
    /// length (4). The writer formats the time, so no request formats a timestamp.
    static let headerSize = 17

    private struct State {
        /// Lines waiting, each behind its header.
        var pending: [UInt8] = []
        /// The writer holds a batch it has not finished writing.
        var writing = false
        var dropped = Drops()
        /// Dropped since the writer last said so.
        var unreported = Drops()
        /// An audit line was refused since the writer last took the buffer.
        var refusingAudit = false
        /// Nothing more is accepted; the writer ends once it has written what waits.
        var closed = false

        var idle: Bool { pending.isEmpty && !writing && unreported.total == 0 }
    }

    private let state: ConditionLock<State>
    private let capacity: Int

    /// Starts a writer thread for `descriptor` (standard output unless told). With `timestamps`
    /// each line is written behind `ts=<RFC 3339 UTC, milliseconds> ` (logfmt; journald stamps
    /// lines itself). `dropReport` makes the line that tells how many lines were dropped.
    package init(descriptor: Int32 = 1, capacity: Int = LineSink.defaultCapacity, timestamps: Bool, dropReport: @escaping @Sendable (Drops) -> [UInt8]) throws {
        let state = ConditionLock(State())
        self.state = state
        self.capacity = capacity
        let writer = Writer(descriptor: descriptor, timestamps: timestamps, dropReport: dropReport)
        try SystemThread.detach(name: "broker-log") { writer.run(state) }
    }

    deinit {
        state.withLock { $0.closed = true }
        state.broadcast()
    }

    /// Queues `line` (without its newline) for writing. False when the buffer had no room (or
    /// the sink is closed): the line was dropped and counted. Never blocks on the destination.
    @discardableResult
    package func append(_ line: String, stream: Stream) -> Bool {
        var line = line
        return line.withUTF8 { append(bytes: $0, stream: stream) }
    }

    /// `append` for bytes already at hand.
    @discardableResult
    package func append(bytes: UnsafeBufferPointer<UInt8>, stream: Stream) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let length = Self.cutLength(bytes)
        let limit = stream == .audit ? capacity : capacity - capacity / 4
        let (accepted, wake) = state.withLock { state -> (Bool, Bool) in
            guard !state.closed, state.pending.count + Self.headerSize + length <= limit else {
                state.dropped[stream] += 1
                state.unreported[stream] += 1
                if stream == .audit { state.refusingAudit = true }
                return (false, false)
            }
            let wasEmpty = state.pending.isEmpty
            state.pending.append(stream.rawValue)
            withUnsafeBytes(of: Int64(now.tv_sec).littleEndian) { state.pending.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(now.tv_nsec).littleEndian) { state.pending.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt32(length).littleEndian) { state.pending.append(contentsOf: $0) }
            state.pending.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[..<length]))
            // The writer sleeps only on an empty buffer: only the first line after it wakes it.
            return (true, wasEmpty)
        }
        if wake { state.broadcast() }
        return accepted
    }

    /// Whether an audit line was refused since the writer last took the buffer: the audit trail
    /// cannot be written now (`audit.on_overflow: refuse` stops handing out tokens meanwhile).
    package var isRefusingAudit: Bool {
        state.withLock { $0.refusingAudit }
    }

    /// Lines dropped since the start.
    package var drops: Drops {
        state.withLock { $0.dropped }
    }

    /// Waits until every line queued so far is written, or `timeout` has passed; true when all
    /// were. For the end of the process: a stalled destination delays the exit by `timeout` at
    /// most.
    @discardableResult
    package func flush(timeout: Duration) -> Bool {
        state.wait(until: \.idle, timeout: timeout) { _, idle in idle }
    }

    /// `bytes.count`, or less: at most `maximumLineBytes`, never inside a UTF-8 sequence.
    static func cutLength(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        guard bytes.count > maximumLineBytes else { return bytes.count }
        var length = maximumLineBytes
        while length > 0 && bytes[length] & 0xC0 == 0x80 { length -= 1 }
        return length
    }

    // MARK: - The writer

    /// The writer thread: takes the whole buffer, stamps and writes it, says what was dropped.
    private struct Writer: Sendable {
        let descriptor: Int32
        let timestamps: Bool
        let dropReport: @Sendable (Drops) -> [UInt8]

        func run(_ state: ConditionLock<State>) {
            var batch: [UInt8] = []
            var output: [UInt8] = []
            while true {
                var unreported = Drops()
                let ending = state.wait(
                    until: { !$0.pending.isEmpty || $0.unreported.total > 0 || $0.closed },
                    then: { state, _ in
                        if state.closed && state.pending.isEmpty && state.unreported.total == 0 { return true }
                        swap(&state.pending, &batch)
                        unreported = state.unreported
                        state.unreported = Drops()
                        state.refusingAudit = false
                        state.writing = true
                        return false
                    })
                if ending { return }
                output.removeAll(keepingCapacity: true)
                let lines = render(batch, into: &output)
                if unreported.total > 0 {
                    // After the batch: the lines were dropped once the buffer was full, that is
                    // after every line in it.
                    var now = timespec()
                    clock_gettime(CLOCK_REALTIME, &now)
                    dropReport(unreported).withUnsafeBytes { line($0, seconds: Int(now.tv_sec), nanoseconds: Int(now.tv_nsec), into: &output) }
                }
                let written = writeAll(output)
                state.withLock { state in
                    if !written {
                        state.dropped.log += lines.log
                        state.dropped.audit += lines.audit
                        state.unreported.log += lines.log
                        state.unreported.audit += lines.audit
                    }
                    state.writing = false
                }
                state.broadcast()
                // Lines that come a few microseconds apart (the gateway writes one per call)
                // would wake this thread for each, and cost a wakeup, a context switch and a
                // write per line: after a write it lets the next batch gather for a millisecond.
                usleep(1000)
                // A burst's megabytes are not kept for the rest of the process's life.
                batch.removeAll(keepingCapacity: batch.capacity <= 64 * 1024)
                if output.capacity > 64 * 1024 { output = [] }
            }
        }

        /// The batch's lines, stamped, into `output`; the number of lines by stream.
        private func render(_ batch: [UInt8], into output: inout [UInt8]) -> Drops {
            var lines = Drops()
            batch.withUnsafeBytes { bytes in
                var offset = 0
                while offset + LineSink.headerSize <= bytes.count {
                    let stream = Stream(rawValue: bytes[offset]) ?? .log
                    let seconds = Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 1, as: Int64.self))
                    let nanoseconds = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 9, as: UInt32.self))
                    let length = Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset + 13, as: UInt32.self)))
                    let start = offset + LineSink.headerSize
                    line(UnsafeRawBufferPointer(rebasing: bytes[start..<start + length]), seconds: Int(seconds), nanoseconds: Int(nanoseconds), into: &output)
                    lines[stream] += 1
                    offset = start + length
                }
            }
            return lines
        }

        private func line(_ text: UnsafeRawBufferPointer, seconds: Int, nanoseconds: Int, into output: inout [UInt8]) {
            if timestamps {
                output.append(contentsOf: "ts=".utf8)
                UTCTimestamp.append(secondsSince1970: seconds, milliseconds: nanoseconds / 1_000_000, to: &output)
                output.append(UInt8(ascii: " "))
            }
            output.append(contentsOf: text)
            output.append(UInt8(ascii: "\n"))
        }

        /// Writes all of `bytes`, waiting as long as the destination needs. False when it fails
        /// for good (closed, gone).
        private func writeAll(_ bytes: [UInt8]) -> Bool {
            bytes.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let written = write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                    if written > 0 {
                        offset += written
                    } else if written < 0 && errno == EINTR {
                        continue
                    } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                        // A non-blocking descriptor inherited from whoever started us.
                        var ready = pollfd(fd: descriptor, events: Int16(POLLOUT), revents: 0)
                        _ = poll(&ready, 1, -1)
                    } else {
                        return false
                    }
                }
                return true
            }
        }
    }
}
