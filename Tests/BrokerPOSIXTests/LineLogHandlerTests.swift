import Logging
import Testing

@testable import BrokerPOSIX

@Suite("Log lines")
struct LineLogHandlerTests {
    static func text(_ line: [UInt8]) -> String { String(decoding: line, as: UTF8.self) }

    @Test(
        "values are quoted and escaped: a caller cannot forge a second line or a field",
        arguments: [
            ("plain", "plain"),
            ("two words", "\"two words\""),
            ("evil\nlevel=error msg=forged", "\"evil\\nlevel=error msg=forged\""),
            ("quote\"back\\slash", "\"quote\\\"back\\\\slash\""),
            ("", "\"\""),
            ("bell\u{7}", "\"bell\\u{7}\""),
            ("esc\u{1b}del\u{7f}", "\"esc\\u{1b}del\\u{7f}\""),
            ("blåbær", "\"blåbær\""),
        ])
    func escaping(_ input: String, _ expected: String) {
        let line = Self.text(LineLogHandler.line(level: .info, message: "m", metadata: ["key": "\(input)"], format: .logfmt))
        #expect(line == "level=info msg=m key=\(expected)")
        #expect(!line.contains("\n"))
    }

    @Test("journald lines: the priority, the message escaped but not quoted, the fields in key order")
    func journald() {
        let line = Self.text(
            LineLogHandler.line(level: .warning, message: "say \"hi\"\nthere", metadata: ["b": "2", "a": "x y", "odd key=é": "1"], format: .journald))
        #expect(line == "<4>say \\\"hi\\\"\\nthere a=\"x y\" b=2 odd_key__=1")
    }

    @Test("a line written field by field: numbers in decimal, substrings and strings escaped as metadata's values are")
    func fields() {
        var line = LineLogHandler.Line(level: .info, message: "m", format: .logfmt)
        for (key, number) in [("zero", 0), ("one", 1), ("big", Int.max), ("negative", -42), ("least", Int.min)] { line.field(key, number) }
        let text = "/path two\n"
        line.field("slice", text.dropFirst())
        line.field("text", "x=y")
        #expect(
            Self.text(line.bytes)
                == "level=info msg=m zero=0 one=1 big=9223372036854775807 negative=-42 least=-9223372036854775808 slice=\"path two\\n\" text=\"x=y\"")
    }

    @Test("syslog priorities by level")
    func priorities() {
        #expect([Logger.Level.critical, .error, .warning, .notice, .info, .debug, .trace].map(LineLogHandler.priority) == [2, 3, 4, 5, 6, 7, 7])
    }

    @Test("JOURNAL_STREAM selects the journald format")
    func detection() {
        #expect(LineLogHandler.detectFormat(environment: ["JOURNAL_STREAM": "8:1"]) == .journald)
        #expect(LineLogHandler.detectFormat(environment: [:]) == .logfmt)
    }
}
