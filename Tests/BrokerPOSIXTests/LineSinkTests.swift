import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerPOSIX

@Suite("The log writer: a bounded buffer that never blocks the logging thread", .timeLimit(.minutes(1)))
struct LineSinkTests {
    static func sink(_ pipe: TestPipe, capacity: Int = LineSink.defaultCapacity, timestamps: Bool = false) throws -> LineSink {
        try LineSink(descriptor: pipe.writeEnd, capacity: capacity, timestamps: timestamps) { drops in
            Array("dropped log=\(drops.log) audit=\(drops.audit)".utf8)
        }
    }

    @Test("lines arrive whole, in order, one per line; logfmt lines are stamped by the writer")
    func order() throws {
        let pipe = try TestPipe()
        let sink = try Self.sink(pipe, timestamps: true)
        for index in 0..<500 { #expect(sink.append("level=info msg=line\(index)", stream: index % 2 == 0 ? .log : .audit)) }
        #expect(sink.flush(timeout: .seconds(5)))
        let lines = pipe.read(until: { $0.hasSuffix("msg=line499\n") }).split(separator: "\n")
        #expect(lines.count == 500)
        for (index, line) in lines.enumerated() {
            // ts=2026-11-29T20:17:58.481Z level=info msg=lineN
            let parts = line.split(separator: " ")
            #expect(parts.count == 3 && parts[0].hasPrefix("ts=20") && parts[0].hasSuffix("Z") && parts[0].count == 27, "\(line)")
            #expect(parts.dropFirst().joined(separator: " ") == "level=info msg=line\(index)")
        }
        #expect(sink.drops == LineSink.Drops())
    }

    @Test("journald lines go out as they came: journald stamps them itself")
    func unstamped() throws {
        let pipe = try TestPipe()
        let sink = try Self.sink(pipe)
        sink.append("<6>ready", stream: .log)
        sink.append("<6>token handed out audit=true", stream: .audit)
        #expect(sink.flush(timeout: .seconds(5)))
        #expect(pipe.read(until: { $0.hasSuffix("audit=true\n") }) == "<6>ready\n<6>token handed out audit=true\n")
    }

    @Test("a destination that stops reading: appending never waits, lines past the buffer are dropped and counted, and one line tells the count once it drains")
    func stalled() throws {
        let pipe = try TestPipe(size: 4096)
        pipe.fill()
        let sink = try Self.sink(pipe, capacity: 8192)
        let line = "<6>" + String(repeating: "a", count: 97)
        var refused = LineSink.Drops()
        let start = ContinuousClock.now
        for index in 0..<2000 {
            let stream: LineSink.Stream = index % 4 == 0 ? .log : .audit
            if !sink.append(line, stream: stream) { refused[stream] += 1 }
        }
        // 2,000 lines into a destination that takes none: a blocking write would never return.
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(refused.total > 1800, "8 KiB (plus one batch in flight) holds well under 200 such lines")
        #expect(sink.drops == refused)
        #expect(sink.isRefusingAudit)
        #expect(!sink.flush(timeout: .milliseconds(100)), "nothing can be written yet")

        // The writer may have taken the buffer while lines were still coming: then one report
        // line follows each batch that had drops before it. Together they tell every drop.
        let written = pipe.read(until: { Self.reported(in: $0) == refused })
        #expect(Self.reported(in: written) == refused)
        #expect(written.split(separator: "\n").filter { $0 == line }.count == 2000 - Int(refused.total))
        #expect(written.split(separator: "\n").last?.hasPrefix("dropped ") == true, "the count comes once the destination drains")
        #expect(sink.flush(timeout: .seconds(5)))
        #expect(!sink.isRefusingAudit, "the writer has taken the buffer: audit lines fit again")
        #expect(sink.append(line, stream: .audit))
        #expect(sink.drops == refused, "the totals stay for the metrics")
    }

    /// The sum of the drop reports in `text`.
    static func reported(in text: String) -> LineSink.Drops {
        var sum = LineSink.Drops()
        for line in text.split(separator: "\n") where line.hasPrefix("dropped ") {
            let fields = line.split(separator: " ").dropFirst().map { $0.split(separator: "=") }
            for field in fields where field.count == 2 {
                if field[0] == "log" { sum.log += UInt64(field[1]) ?? 0 }
                if field[0] == "audit" { sum.audit += UInt64(field[1]) ?? 0 }
            }
        }
        return sum
    }

    @Test("log lines leave the last quarter of the buffer to audit lines")
    func auditReserve() async throws {
        let pipe = try TestPipe(size: 4096)
        pipe.fill()
        let sink = try Self.sink(pipe, capacity: 4000)
        // The writer takes this first line and then waits on the full pipe: what follows stays
        // in the buffer.
        sink.append("first", stream: .log)
        try await Task.sleep(for: .milliseconds(200))
        let line = String(repeating: "l", count: 83)  // 100 bytes with its header
        var logLines = 0
        while sink.append(line, stream: .log) { logLines += 1 }
        #expect((29...30).contains(logLines), "3,000 of 4,000 bytes for log lines: \(logLines)")
        #expect(!sink.isRefusingAudit, "a dropped log line does not stop the audit")
        var auditLines = 0
        while sink.append(line, stream: .audit) { auditLines += 1 }
        #expect((9...11).contains(auditLines), "the last quarter: \(auditLines)")
        #expect(sink.isRefusingAudit)
        #expect(sink.drops == LineSink.Drops(log: 1, audit: 1))
        _ = pipe.read(until: { $0.contains("dropped log=1 audit=1") })
    }

    @Test("at exit, flush gives up after its timeout on a destination that does not read")
    func flushTimeout() throws {
        let pipe = try TestPipe(size: 4096)
        pipe.fill()
        let sink = try Self.sink(pipe)
        sink.append("waiting", stream: .log)
        let start = ContinuousClock.now
        #expect(!sink.flush(timeout: .milliseconds(300)))
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(300) && waited < .seconds(3), "\(waited)")
    }

    @Test("a destination that is gone: the lines are counted as dropped, and the process lives on")
    func goneDestination() throws {
        var pipe: TestPipe? = try TestPipe()
        let sink = try Self.sink(pipe!)
        pipe = nil
        #expect(sink.append("one", stream: .log))
        #expect(sink.append("two", stream: .audit))
        #expect(sink.flush(timeout: .seconds(5)) || sink.drops.total == 2)
        for _ in 0..<100 where sink.drops.total < 2 { usleep(10_000) }
        #expect(sink.drops == LineSink.Drops(log: 1, audit: 1))
    }

    @Test("a line longer than 16 KiB is cut, never inside a UTF-8 sequence")
    func longLines() {
        let text = Array(String(repeating: "æ", count: 10_000).utf8)  // 2 bytes each
        text.withUnsafeBufferPointer { bytes in
            let length = LineSink.cutLength(bytes)
            #expect(length == LineSink.maximumLineBytes)
            #expect(String(validating: bytes[..<length], as: UTF8.self) != nil)
        }
        let odd = Array(("x" + String(repeating: "æ", count: 10_000)).utf8)
        odd.withUnsafeBufferPointer { bytes in
            let length = LineSink.cutLength(bytes)
            #expect(length == LineSink.maximumLineBytes - 1)
            #expect(String(validating: bytes[..<length], as: UTF8.self) != nil)
        }
    }
}
