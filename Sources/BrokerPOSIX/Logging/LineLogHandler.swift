package import Logging

/// One log line per event, handed to a `LineSink` (standard output, written by a thread of its
/// own; a stalled destination drops lines instead of stopping the daemon): with
/// `$JOURNAL_STREAM` (systemd) a syslog priority prefix (`<3>`…`<7>`) and no timestamp, since
/// journald adds its own; otherwise logfmt, stamped by the sink's writer. Values are quoted and
/// escaped so that nothing a caller sends can forge a line.
package struct LineLogHandler: LogHandler {
    /// How lines are written.
    package enum Format: Sendable {
        /// `<6>message key=value` for journald.
        case journald
        /// `ts=... level=info msg="..." key=value`.
        case logfmt
    }

    /// Where lines go and how they look: shared by every handler of the process and by the
    /// `Auditor`, which writes its lines into the same sink.
    package struct Output: Sendable {
        /// The buffer and its writer.
        package let sink: LineSink
        /// The line format.
        package let format: Format

        /// Lines in `format` to a new sink on `descriptor` (standard output unless told).
        package init(format: Format, descriptor: Int32 = 1, capacity: Int = LineSink.defaultCapacity) throws {
            self.format = format
            sink = try LineSink(descriptor: descriptor, capacity: capacity, timestamps: format == .logfmt) { drops in
                LineLogHandler.line(
                    level: .warning, message: "log lines dropped: their destination did not take them in time",
                    metadata: ["dropped_log_lines": "\(drops.log)", "dropped_audit_lines": "\(drops.audit)"], format: format
                )
            }
        }
    }

    /// The format for this process: journald when standard output is the journal.
    package static func detectFormat(environment: [String: String]? = nil) -> Format {
        let environment = environment ?? ProcessEnvironment.all
        return environment["JOURNAL_STREAM"].map { $0.isEmpty ? .logfmt : .journald } ?? .logfmt
    }

    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level
    let output: Output
    let label: String

    /// A handler for `label` at `level`.
    package init(label: String, level: Logger.Level, output: Output) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var fields = metadata
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        let line = Self.line(level: event.level, message: "\(event.message)", metadata: fields, format: output.format)
        // A refused line is counted as dropped by the sink itself.
        _ = line.withUnsafeBufferPointer { output.sink.append(bytes: $0, stream: .log) }
    }

    /// A line without its newline (and, in logfmt, without the timestamp the sink adds): the one
    /// serialiser of log and audit lines. Metadata in key order.
    ///
    /// Built byte by byte: the Unicode-aware string operations it replaced (scalar properties,
    /// scalar views) live in the Swift runtime's code, which cannot be ordered with ours, and
    /// every host logging at info paid for them in resident memory (BENCHMARKS.md, idle memory).
    package static func line(level: Logger.Level, message: String, metadata: Logger.Metadata, format: Format) -> [UInt8] {
        var line = Line(level: level, message: message, format: format)
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { line.field(key, "\(value)") }
        return line.bytes
    }

    /// A line being written: its level and message, then its fields in the order given (sorted
    /// by key, as `metadata` is, where the caller wants the same order). The audit trail's hot
    /// lines write their fields straight in: an array of string pairs, each number made a string
    /// first, was a tenth of a forwarded call's CPU.
    package struct Line {
        /// The line so far, without its newline.
        package private(set) var bytes: [UInt8] = []

        package init(level: Logger.Level, message: String, format: Format) {
            bytes.reserveCapacity(256)
            switch format {
            case .journald:
                bytes.append(UInt8(ascii: "<"))
                bytes.append(UInt8(ascii: "0") + UInt8(priority(level)))
                bytes.append(UInt8(ascii: ">"))
                var message = message
                message.withUTF8 { appendEscaped($0, quoted: false, to: &bytes) }
            case .logfmt:
                bytes.append(contentsOf: "level=".utf8)
                bytes.append(contentsOf: level.rawValue.utf8)
                bytes.append(contentsOf: " msg=".utf8)
                var message = message
                message.withUTF8 { appendValue($0, to: &bytes) }
            }
        }

        package mutating func field(_ key: String, _ value: String) {
            start(key)
            var value = value
            value.withUTF8 { appendValue($0, to: &bytes) }
        }

        package mutating func field(_ key: String, _ value: Substring) {
            start(key)
            var value = value
            value.withUTF8 { appendValue($0, to: &bytes) }
        }

        /// A number, in decimal (nothing in it to quote).
        package mutating func field(_ key: String, _ value: Int) {
            start(key)
            if value < 0 { bytes.append(UInt8(ascii: "-")) }
            var magnitude = value.magnitude
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for any Int's 20 digits
            withUnsafeMutableBytes(of: &digits) { buffer in
                var start = buffer.count
                repeat {
                    start -= 1
                    buffer[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                    magnitude /= 10
                } while magnitude > 0
                bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buffer[start...]))
            }
        }

        /// A field's ` key=`.
        private mutating func start(_ key: String) {
            bytes.append(UInt8(ascii: " "))
            LineLogHandler.appendKey(key, to: &bytes)
            bytes.append(UInt8(ascii: "="))
        }
    }

    /// syslog priorities: critical 2, error 3, warning 4, notice 5, info 6, debug and trace 7.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .critical: 2
        case .error: 3
        case .warning: 4
        case .notice: 5
        case .info: 6
        case .debug, .trace: 7
        }
    }

    /// A key: ASCII letters, digits, `_` and `.` kept, anything else (each character) `_`.
    static func appendKey(_ text: String, to line: inout [UInt8]) {
        var text = text
        text.withUTF8 { utf8 in
            // Keys are the daemon's own and almost always plain: one copy, not an append per byte.
            if utf8.allSatisfy(isKeyByte) {
                line.append(contentsOf: utf8)
                return
            }
            for byte in utf8 where byte & 0xC0 != 0x80 { line.append(isKeyByte(byte) ? byte : UInt8(ascii: "_")) }
        }
    }

    /// A logfmt value: bare when safe (printable ASCII without space, `"`, `=` or `\`), else
    /// quoted with `"`, `\` and control characters escaped, so that no value can end the line or
    /// forge a field.
    static func appendValue(_ text: UnsafeBufferPointer<UInt8>, to line: inout [UInt8]) {
        let safe =
            !text.isEmpty && text.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "=") && $0 != UInt8(ascii: "\\") }
        if safe {
            line.append(contentsOf: text)
        } else {
            appendEscaped(text, quoted: true, to: &line)
        }
    }

    /// `text` with `"`, `\` and control characters escaped; in quotes when `quoted` (a journald
    /// message is not: journald takes the whole line as the message).
    static func appendEscaped(_ text: UnsafeBufferPointer<UInt8>, quoted: Bool, to line: inout [UInt8]) {
        if quoted { line.append(UInt8(ascii: "\"")) }
        defer { if quoted { line.append(UInt8(ascii: "\"")) } }
        // Nothing to escape (every message of the daemon's own): one copy, not an append per byte.
        if text.allSatisfy({ $0 >= 0x20 && $0 != 0x7F && $0 != UInt8(ascii: "\"") && $0 != UInt8(ascii: "\\") }) {
            line.append(contentsOf: text)
            return
        }
        for byte in text {
            switch byte {
            case UInt8(ascii: "\""): line.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\"): line.append(contentsOf: "\\\\".utf8)
            case UInt8(ascii: "\n"): line.append(contentsOf: "\\n".utf8)
            case UInt8(ascii: "\r"): line.append(contentsOf: "\\r".utf8)
            case UInt8(ascii: "\t"): line.append(contentsOf: "\\t".utf8)
            case 0..<0x20, 0x7F:
                line.append(contentsOf: "\\u{".utf8)
                if byte >= 0x10 { line.append(hexDigit(byte >> 4)) }
                line.append(hexDigit(byte & 0x0F))
                line.append(UInt8(ascii: "}"))
            default:
                // UTF-8 of any other character, as it came.
                line.append(byte)
            }
        }
    }

    private static func isKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"),
            UInt8(ascii: "."):
            true
        default:
            false
        }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
