import BrokerTestSupport
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing

@testable import BrokerConfig
@testable import BrokerPOSIX
@testable import BrokerServer
@testable import BrokerTokens
@testable import MaskinportenEmulator

/// A router as the daemon builds it, in this process: profile `demo` (from `DemoSetup`, a key
/// made now) against an emulator on loopback, also in this process, and audit lines written to
/// /dev/null through the real sink. Made once and shared by the server tests.
actor ServerFixture {
    static let shared = ServerFixture()

    struct Made: Sendable {
        let router: Router
        let emulator: Emulator
    }

    private var made: Made?

    /// A process's credentials that no allow list names (not root, not this process's user).
    static let stranger = PeerCredentials(pid: 4_000_002, uid: 54_321, gid: 54_321)
    /// This process, which may use every profile (its user runs the daemon's code).
    static let me = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())

    func get() async throws -> Made {
        if let made { return made }
        let logger = Logger(label: "server-tests", factory: { _ in SwiftLogNoOpLogHandler() })
        let server = try await EmulatorServer.bindForTests(logger: logger)
        // The emulator serves for the whole test run, as the fuzz target's does.
        Task { try await server.run() }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("server-tests-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let configPath = try DemoSetup.write(in: directory, for: server.emulator)
        let loaded = try LoadedConfiguration.load(path: configPath)
        let broker = try TokenBroker(configuration: loaded.configuration, credentials: loaded.credentials, logger: logger)
        let state = ServingState(loaded)
        let output = try LineLogHandler.Output(format: .logfmt, descriptor: open("/dev/null", O_WRONLY | O_CLOEXEC))
        let auditor = Auditor(output: output, level: .info) { 60 }
        let made = Made(router: Router(broker: broker, state: { state }, metrics: ServerMetrics(), auditor: auditor), emulator: server.emulator)
        self.made = made
        return made
    }
}

/// One connection to the broker's pipeline on a `NIOAsyncTestingChannel`: exactly the handlers a
/// socket connection gets (`SocketServer.configureConnection`), with bytes in and answers out.
struct TestConnection {
    let channel: NIOAsyncTestingChannel
    private let received = ReceivedBytes()

    /// One answer, parsed.
    struct Answer: CustomStringConvertible {
        var status: Int
        var headers: [(name: String, value: String)]
        var body: String
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
        var description: String { "\(status) \(headers) \(body)" }
    }

    /// A connection from `peer`; with `handOver`, as the fast path hands one to NIO (its unwritten
    /// answers and unanswered input replayed first).
    static func open(
        peer: PeerCredentials = ServerFixture.me, limits: ServerLimits = ServerLimits(), handOver: (input: [UInt8], output: [UInt8], close: Bool)? = nil
    ) async throws -> TestConnection {
        let router = try await ServerFixture.shared.get().router
        let channel = NIOAsyncTestingChannel()
        let logger = Logger(label: "server-tests", factory: { _ in SwiftLogNoOpLogHandler() })
        try await channel.eventLoop.submit {
            try SocketServer.configureConnection(channel, peer: peer, router: router, limits: limits, logger: logger)
            if let handOver {
                try channel.pipeline.syncOperations.addHandler(
                    Replay(input: handOver.input, output: handOver.output, closeAfterOutput: handOver.close), position: .first)
            }
        }.get()
        try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/broker-test"))
        return TestConnection(channel: channel)
    }

    func send(_ text: String) async throws {
        try await channel.writeInbound(ByteBuffer(string: text))
    }

    /// The next `count` answers, waiting up to `timeout` for them.
    func answers(_ count: Int, timeout: Duration = .seconds(10)) async throws -> [Answer] {
        let end = ContinuousClock.now + timeout
        while true {
            if let parsed = Self.parse(received.bytes, count: count) {
                received.drop(parsed.consumed)
                return parsed.answers
            }
            guard ContinuousClock.now < end else {
                throw TestFailure("\(count) answers did not come in \(timeout): \(String(decoding: received.bytes, as: UTF8.self))")
            }
            if let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                received.append(buffer)
            } else if !channel.isActive {
                // The answer may have been written between the read above and the close.
                if let buffer = try await channel.readOutbound(as: ByteBuffer.self) {
                    received.append(buffer)
                    continue
                }
                throw TestFailure("the connection closed after \(String(decoding: received.bytes, as: UTF8.self))")
            } else {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
    }

    func answer(timeout: Duration = .seconds(10)) async throws -> Answer {
        try await answers(1, timeout: timeout)[0]
    }

    /// Whether the broker closes the connection within `timeout`.
    func closes(within timeout: Duration = .seconds(5)) async -> Bool {
        let end = ContinuousClock.now + timeout
        while channel.isActive, ContinuousClock.now < end {
            _ = try? await channel.readOutbound(as: ByteBuffer.self)
            try? await Task.sleep(for: .milliseconds(2))
        }
        return !channel.isActive
    }

    func close() async {
        _ = try? await channel.finish(acceptAlreadyClosed: true)
    }

    /// Complete HTTP/1.1 answers at the start of `bytes` (framed by Content-Length).
    static func parse(_ bytes: [UInt8], count: Int) -> (answers: [Answer], consumed: Int)? {
        var answers: [Answer] = []
        var offset = 0
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while answers.count < count {
            guard let end = bytes[offset...].firstRange(of: separator) else { return nil }
            let head = String(decoding: bytes[offset..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
            let status = Int(head[0].split(separator: " ")[1]) ?? 0
            let headers = head.dropFirst().map { line -> (name: String, value: String) in
                let parts = line.split(separator: ":", maxSplits: 1)
                return (String(parts[0]), parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
            }
            let length = Int(headers.first { $0.name.lowercased() == "content-length" }?.value ?? "0") ?? 0
            guard end.upperBound + length <= bytes.count else { return nil }
            answers.append(Answer(status: status, headers: headers, body: String(decoding: bytes[end.upperBound..<(end.upperBound + length)], as: UTF8.self)))
            offset = end.upperBound + length
        }
        return (answers, offset)
    }
}

/// Bytes written by the pipeline and not parsed yet.
final class ReceivedBytes: @unchecked Sendable {
    // @unchecked: one test uses one connection from one task.
    private(set) var bytes: [UInt8] = []
    func append(_ buffer: ByteBuffer) { bytes.append(contentsOf: buffer.readableBytesView) }
    func drop(_ count: Int) { bytes.removeFirst(count) }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A GET request.
func get(_ target: String, _ headers: String = "") -> String {
    "GET \(target) HTTP/1.1\r\nHost: localhost\r\n\(headers)\r\n"
}
