@testable import BrokerServer
import Logging
import Testing

@Suite("Log lines")
struct LineLogHandlerTests {
    @Test("values are quoted and escaped: a caller cannot forge a second line", arguments: [
        ("plain", "plain"),
        ("two words", "\"two words\""),
        ("evil\nlevel=error msg=forged", "\"evil\\nlevel=error msg=forged\""),
        ("quote\"back\\slash", "\"quote\\\"back\\\\slash\""),
        ("", "\"\""),
        ("bell\u{7}", "\"bell\\u{7}\""),
    ])
    func escaping(_ input: String, _ expected: String) {
        #expect(LineLogHandler.value(input) == expected)
        #expect(!LineLogHandler.value(input).contains("\n"))
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
