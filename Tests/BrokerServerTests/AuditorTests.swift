import BrokerTestSupport
import Foundation
import Logging
import Testing

@testable import BrokerConfig
@testable import BrokerPOSIX
@testable import BrokerServer
@testable import BrokerTokens

@Suite("Audit lines: the first hand-out of a token to a process in full, repeats folded into counts", .timeLimit(.minutes(1)))
struct AuditorTests {
    static let token = IssuedToken(
        value: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", kind: .altinn, scope: "s", expiresAt: Date().addingTimeInterval(1800),
        fingerprint: "0123456789ab")
    static let next = IssuedToken(
        value: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ5In0.b3RoZXI", kind: .altinn, scope: "s", expiresAt: Date().addingTimeInterval(1800),
        fingerprint: "ba9876543210")
    static let me = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
    static let other = PeerCredentials(pid: 4_000_001, uid: 1001, gid: 1001)

    struct Setup {
        let pipe: TestPipe
        let output: LineLogHandler.Output
        let auditor: Auditor

        init(level: Logger.Level = .info, capacity: Int = LineSink.defaultCapacity, format: LineLogHandler.Format = .journald) throws {
            pipe = try TestPipe(size: 4096)
            output = try LineLogHandler.Output(format: format, descriptor: pipe.writeEnd, capacity: capacity)
            auditor = Auditor(output: output, level: level) { 60 }
        }

        /// Every line written until now.
        func lines() -> [Substring] {
            #expect(output.sink.flush(timeout: .seconds(5)))
            return pipe.read(until: { _ in false }, timeout: .milliseconds(200)).split(separator: "\n")
        }
    }

    static func count(_ lines: [Substring], pid: Int32) -> UInt64 {
        lines.filter { $0.contains(" pid=\(pid) ") && $0.contains("again") }.compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("count=") }.flatMap { UInt64($0.dropFirst("count=".count)) }
        }.reduce(0, +)
    }

    @Test("1,000 hand-outs of one token to one process: one full line, then count lines with the right total; another process gets its own line")
    func folding() throws {
        let setup = try Setup()
        for index in 0..<1000 {
            #expect(setup.auditor.handOut(.token, name: "notifications", token: Self.token, expiresAt: "2026-11-29T21:00:00Z", peer: Self.me, overflow: .drop))
            if index == 400 { setup.auditor.summarise() }
        }
        #expect(setup.auditor.handOut(.token, name: "notifications", token: Self.token, peer: Self.other, overflow: .drop))
        setup.auditor.summarise()
        let lines = setup.lines()
        let first = lines.filter { $0.hasPrefix("<6>token handed out audit=true") && $0.contains(" pid=\(getpid()) ") }
        #expect(first.count == 1)
        let executable = try #require(try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
        #expect(
            first.first
                == "<6>token handed out audit=true exe=\(executable) expires_at=2026-11-29T21:00:00Z fingerprint=0123456789ab gid=\(getgid()) pid=\(getpid()) profile=notifications uid=\(getuid())"
        )
        #expect(lines.filter { $0.hasPrefix("<6>token handed out again ") }.count == 2, "one count line per interval with repeats")
        #expect(Self.count(lines, pid: getpid()) == 999)
        #expect(
            lines.filter { $0.hasPrefix("<6>token handed out audit=true") && $0.contains(" pid=4000001 ") } == [
                "<6>token handed out audit=true fingerprint=0123456789ab gid=1001 pid=4000001 profile=notifications uid=1001"
            ])
        #expect(!lines.contains { $0.contains(Self.token.value.split(separator: ".")[1]) || $0.contains(Self.token.value.split(separator: ".")[2]) })
    }

    @Test("a new token is a new pair; a pair idle for a whole interval is forgotten and audited in full again")
    func pairs() throws {
        let setup = try Setup()
        let auditor = setup.auditor
        _ = auditor.handOut(.token, name: "p", token: Self.token, peer: Self.me, overflow: .drop)
        _ = auditor.handOut(.token, name: "p", token: Self.next, peer: Self.me, overflow: .drop)
        auditor.summarise()  // both were used in this interval: kept
        _ = auditor.handOut(.token, name: "p", token: Self.next, peer: Self.me, overflow: .drop)
        auditor.summarise()  // the first token was idle for the interval: forgotten
        _ = auditor.handOut(.token, name: "p", token: Self.token, peer: Self.me, overflow: .drop)
        _ = auditor.handOut(.token, name: "p", token: Self.next, peer: Self.me, overflow: .drop)
        auditor.summarise()
        let full = setup.lines().filter { $0.hasPrefix("<6>token handed out audit=true") }
        #expect(full.filter { $0.contains("fingerprint=0123456789ab") }.count == 2)
        #expect(full.filter { $0.contains("fingerprint=ba9876543210") }.count == 1)
    }

    @Test("denials are folded by name and process as well, at notice")
    func denials() throws {
        let setup = try Setup()
        for _ in 0..<50 { setup.auditor.denied("notifications", peer: Self.other) }
        setup.auditor.denied("platform_access_token:app", peer: Self.other)
        setup.auditor.summarise()
        let lines = setup.lines()
        #expect(lines.filter { $0.hasPrefix("<5>access denied audit=true") && $0.contains("profile=notifications") }.count == 1)
        #expect(lines.contains("<5>access denied again audit=true count=49 gid=1001 pid=4000001 profile=notifications uid=1001"))
        #expect(lines.filter { $0.contains("profile=platform_access_token:app") }.count == 1)
    }

    @Test("above info no audit line is written, and every hand-out goes ahead")
    func off() throws {
        let setup = try Setup(level: .error)
        #expect(setup.auditor.handOut(.token, name: "p", token: Self.token, peer: Self.me, overflow: .refuse))
        setup.auditor.denied("p", peer: Self.other)
        setup.auditor.summarise()
        #expect(setup.lines().isEmpty)
    }

    @Test("on_overflow refuse: while the audit cannot be buffered, hand-outs are refused (repeats too); drop hands them out; both recover once it drains")
    func overflow() async throws {
        let setup = try Setup(capacity: 2048)
        let auditor = setup.auditor
        setup.pipe.fill()
        // Taken by the writer, which then waits on the full pipe.
        #expect(auditor.handOut(.token, name: "p", token: Self.token, peer: Self.me, overflow: .refuse))
        try await Task.sleep(for: .milliseconds(200))
        var pid: Int32 = 5_000_000
        while auditor.handOut(.token, name: "p", token: Self.token, peer: PeerCredentials(pid: pid, uid: 1, gid: 1), overflow: .refuse) { pid += 1 }
        #expect(pid > 5_000_003 && pid < 5_000_030, "a few lines fit in 2 KiB: \(pid - 5_000_000)")
        #expect(!auditor.handOut(.token, name: "p", token: Self.token, peer: Self.me, overflow: .refuse), "a repeat is refused too")
        #expect(!auditor.handOut(.token, name: "p", token: Self.next, peer: Self.other, overflow: .refuse))
        #expect(auditor.handOut(.token, name: "p", token: Self.token, peer: Self.me, overflow: .drop), "drop: a repeat goes ahead")
        #expect(auditor.handOut(.token, name: "p", token: Self.next, peer: Self.other, overflow: .drop), "drop: a first hand-out too, its line dropped")
        let drops = auditor.drops
        #expect(drops.audit >= 2)

        // Count lines that cannot be buffered keep their counts.
        auditor.summarise()
        _ = setup.pipe.read(until: { $0.contains("log lines dropped") })
        #expect(auditor.handOut(.token, name: "p", token: Self.next, peer: Self.other, overflow: .refuse), "the destination drains: served again")
        auditor.summarise()
        let lines = setup.lines()
        #expect(Self.count(lines, pid: getpid()) == 1, "the one repeat handed out (under drop) is counted once")
    }
}
