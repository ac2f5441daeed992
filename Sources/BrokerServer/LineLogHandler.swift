import Foundation
public import Logging

/// One log line per event on standard error, written with a single `write(2)`:
/// with `$JOURNAL_STREAM` (systemd) a syslog priority prefix (`<3>`…`<7>`) and no timestamp,
/// since journald adds its own; otherwise logfmt with a UTC timestamp. Values are quoted and
/// escaped so that nothing a caller sends can forge a line.
public struct LineLogHandler: LogHandler {
    /// How lines are written.
    public enum Format: Sendable {
        /// `<6>message key=value` for journald.
        case journald
        /// `ts=... level=info msg="..." key=value`.
        case logfmt
    }

    /// The format for this process: journald when stderr is the journal.
    public static func detectFormat(environment: [String: String]? = nil) -> Format {
        let environment = environment ?? ProcessInfo.processInfo.environment
        return environment["JOURNAL_STREAM"].map { $0.isEmpty ? .logfmt : .journald } ?? .logfmt
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let format: Format
    let label: String

    /// A handler for `label` at `level`.
    public init(label: String, level: Logger.Level, format: Format) {
        self.label = label
        self.logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata
        if let explicit = event.metadata { fields.merge(explicit) { $1 } }
        let pairs = fields.sorted { $0.key < $1.key }.map { "\(Self.key($0.key))=\(Self.value("\($0.value)"))" }
        let line: String
        switch format {
        case .journald:
            line = "<\(Self.priority(event.level))>\(Self.message("\(event.message)"))" + (pairs.isEmpty ? "" : " " + pairs.joined(separator: " "))
        case .logfmt:
            let timestamp = UTCTimestamp.now()
            line = (["ts=\(timestamp)", "level=\(event.level)", "msg=\(Self.value("\(event.message)"))"] + pairs).joined(separator: " ")
        }
        Self.write(line + "\n")
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

    static func write(_ line: String) {
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeMutableBytes { Foundation.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            offset += written
        }
    }
}
