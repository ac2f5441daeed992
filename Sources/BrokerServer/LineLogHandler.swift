public import BrokerSystemd
import Foundation
public import Logging

/// One log line per event, handed to a `LineSink` (standard output, written by a thread of its
/// own; a stalled destination drops lines instead of stopping the daemon): with
/// `$JOURNAL_STREAM` (systemd) a syslog priority prefix (`<3>`…`<7>`) and no timestamp, since
/// journald adds its own; otherwise logfmt, stamped by the sink's writer. Values are quoted and
/// escaped so that nothing a caller sends can forge a line.
public struct LineLogHandler: LogHandler {
    /// How lines are written.
    public enum Format: Sendable {
        /// `<6>message key=value` for journald.
        case journald
        /// `ts=... level=info msg="..." key=value`.
        case logfmt
    }

    /// Where lines go and how they look: shared by every handler of the process and by the
    /// `Auditor`, which writes its lines into the same sink.
    public struct Output: Sendable {
        /// The buffer and its writer.
        public let sink: LineSink
        /// The line format.
        public let format: Format

        /// Lines in `format` to a new sink on `descriptor` (standard output unless told).
        public init(format: Format, descriptor: Int32 = 1, capacity: Int = LineSink.defaultCapacity) throws {
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
    public static func detectFormat(environment: [String: String]? = nil) -> Format {
        let environment = environment ?? ProcessInfo.processInfo.environment
        return environment["JOURNAL_STREAM"].map { $0.isEmpty ? .logfmt : .journald } ?? .logfmt
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let output: Output
    let label: String

    /// A handler for `label` at `level`.
    public init(label: String, level: Logger.Level, output: Output) {
        self.label = label
        self.logLevel = level
        self.output = output
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        output.sink.append(Self.line(level: event.level, message: "\(event.message)", metadata: fields, format: output.format), stream: .log)
    }

    /// A line without its newline (and, in logfmt, without the timestamp the sink adds): the one
    /// serialiser of log and audit lines. Metadata in key order.
    public static func line(level: Logger.Level, message: String, metadata: Logger.Metadata, format: Format) -> String {
        let pairs = metadata.sorted { $0.key < $1.key }.map { "\(key($0.key))=\(value("\($0.value)"))" }
        switch format {
        case .journald:
            return "<\(priority(level))>\(Self.message(message))" + (pairs.isEmpty ? "" : " " + pairs.joined(separator: " "))
        case .logfmt:
            return (["level=\(level)", "msg=\(value(message))"] + pairs).joined(separator: " ")
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

    static func key(_ text: String) -> String {
        String(text.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == ".") ? Character($0) : "_" })
    }

    /// A logfmt value: bare when safe, else quoted with `"`, `\` and control characters escaped.
    static func value(_ text: String) -> String {
        let safe = !text.isEmpty && text.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && $0 != "\"" && $0 != "=" && $0 != "\\" }
        if safe { return text }
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    out += "\\u{\(String(scalar.value, radix: 16))}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out + "\""
    }

    /// A journald message: one line, control characters escaped.
    static func message(_ text: String) -> String {
        let value = value(text)
        return value.hasPrefix("\"") ? String(value.dropFirst().dropLast()) : value
    }
}
