import BrokerConfig
import BrokerCrypto
import BrokerPOSIX
import BrokerServer
import BrokerTokens
import Dispatch
import Foundation
import FuzzSupport
import Logging
import MaskinportenEmulator
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1

/// The daemon's request handling: any bytes arriving on a connection go through the same
/// pipeline as on the socket (byte guard, NIO's HTTP/1 codec with the broker's limits, the
/// broker's handler and router), and must get answers or a closed connection, never a crash.
/// And every request head the fast path's scanner takes must be the request NIO's parser reads
/// from the same bytes.
@_cdecl("FuzzHTTP_main")
package func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzHTTP)
}

/// libFuzzer's entry point (its runtime refers to it by name).
@_cdecl("LLVMFuzzerTestOneInput")
package func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzHTTP(data, size)
}

let fuzzHTTP: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    let input = bytes(data, size)
    FastPathAgreement.check(input)
    GatewayPathProperty.check(input)
    let done = DispatchSemaphore(value: 0)
    Task {
        await Connection.serve(input)
        done.signal()
    }
    done.wait()
    return 0
}

/// A router as the daemon builds it: profile `demo` with a fresh key, against an emulator in
/// this process (so that token requests are served from the cache after the first), callers
/// allowed as the fuzzer's own user.
let router: Router = {
    let ready = DispatchSemaphore(value: 0)
    let made = NIOLockedValueBox<Result<Router, any Error>?>(nil)
    Task {
        let result: Result<Router, any Error>
        do { result = .success(try await makeRouter()) } catch { result = .failure(error) }
        made.withLockedValue { $0 = result }
        ready.signal()
    }
    ready.wait()
    do {
        return try made.withLockedValue { $0! }.get()
    } catch {
        fatalError("FuzzHTTP cannot set up its router: \(error)")
    }
}()

func makeRouter() async throws -> Router {
    let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    let emulator = try await EmulatorServer.bind(logger: logger)
    Task { try await emulator.run() }
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-http-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    defer { try? FileManager.default.removeItem(at: directory) }
    let configPath = try DemoSetup.write(in: directory, for: emulator.emulator)
    let loaded = try LoadedConfiguration.load(path: configPath)
    let broker = try TokenBroker(configuration: loaded.configuration, credentials: loaded.credentials, logger: logger)
    let state = ServingState(loaded)
    // Audit lines are made and buffered as the daemon makes them, then written to /dev/null.
    let output = try LineLogHandler.Output(format: .logfmt, descriptor: open("/dev/null", O_WRONLY))
    let auditor = Auditor(output: output, level: .info) { 60 }
    return Router(broker: broker, state: { state }, metrics: ServerMetrics(), auditor: auditor)
}

/// What the gateway sends on is what every reader of the path reads: a path the judge takes,
/// percent-decoded and read segment by segment as a server would, still lies under the prefix
/// and has no `.`, `..` or empty segment and no backslash. (The input's first word is tried as a
/// path, alone and after the prefix.)
enum GatewayPathProperty {
    static let prefix = "/notifications/api/v1/"

    static func check(_ input: [UInt8]) {
        let end = input.firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") } ?? input.count
        let word = String(decoding: input[..<end], as: UTF8.self)
        for path in [word, prefix + word] {
            guard case .success = GatewayPath.judge(path[...], prefixes: [prefix]) else { continue }
            let decoded = percentDecoded(path)
            let segments = decoded.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
            let unsafe =
                !decoded.hasPrefix(prefix) || segments.dropLast().contains { $0.isEmpty || $0 == "." || $0 == ".." } || segments.last == ".."
                || segments.last == "." || decoded.contains("\\")
            if unsafe { fatalError("the gateway took \(path.debugDescription), which decodes to \(decoded.debugDescription)") }
        }
    }

    static func percentDecoded(_ text: String) -> String {
        var bytes: [UInt8] = []
        var input = Array(text.utf8)[...]
        while let byte = input.popFirst() {
            if byte == UInt8(ascii: "%"), input.count >= 2, let value = UInt8(String(decoding: input.prefix(2), as: UTF8.self), radix: 16) {
                bytes.append(value)
                input = input.dropFirst(2)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// One connection carrying the input.
enum Connection {
    static let peer = PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid())
    static let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })

    static func serve(_ input: [UInt8]) async {
        let channel = NIOAsyncTestingChannel()
        let counter = Counter()
        do {
            try await channel.eventLoop.submit {
                try SocketServer.configureConnection(channel, peer: peer, router: router, limits: ServerLimits(), logger: logger)
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(counter, position: .after(try sync.handler(type: HTTPServerPipelineHandler.self)))
            }.get()
            try await channel.connect(to: SocketAddress(unixDomainSocketPath: "/fuzz"))
            // In two writes, so that a request split across reads is exercised too.
            let split = input.isEmpty ? 0 : Int(input[0]) % (input.count + 1)
            try await channel.writeInbound(ByteBuffer(bytes: input[..<split]))
            try await channel.writeInbound(ByteBuffer(bytes: input[split...]))
        } catch {
            // Refused input: the pipeline closed the connection or raised; both are answers.
        }
        // Every complete request gets its answer (the router runs in a task of its own), or the
        // connection closes; a request left unanswered for 5 s is a finding. Task.yield alone
        // can starve the router's task: short sleeps after the first few.
        let deadline = ContinuousClock.now + .seconds(5)
        var round = 0
        while channel.isActive, counter.pending > 0 {
            guard ContinuousClock.now < deadline else { fatalError("a request got no answer within 5 s and its connection stayed open") }
            round += 1
            if round < 20 { await Task.yield() } else { try? await Task.sleep(for: .microseconds(100)) }
        }
        while (try? await channel.readOutbound(as: ByteBuffer.self)) != nil {}
        _ = try? await channel.finish(acceptAlreadyClosed: true)
    }
}

/// Counts requests delivered to the broker's handler and answers it finished.
final class Counter: ChannelDuplexHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let counts = NIOLockedValueBox((requests: 0, responses: 0))

    var pending: Int { counts.withLockedValue { $0.requests - $0.responses } }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { counts.withLockedValue { $0.requests += 1 } }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { counts.withLockedValue { $0.responses += 1 } }
        context.write(data, promise: promise)
    }
}

/// The fast path answers what `SimpleRequestScanner` takes without NIO's parser ever seeing it:
/// for each head it takes, NIO's decoder must read the same method, target, keep-alive, first
/// `Accept` and no body from the same bytes (and for a gateway call, the same fields and body
/// length), or the fuzzer stops with both readings.
enum FastPathAgreement {
    static let scanner = SimpleRequestScanner(headerBytes: ServerLimits().headerBytes, targetBytes: ServerLimits().uriBytes)

    static func check(_ input: [UInt8]) {
        var offset = 0
        while offset < input.count {
            let scan = input[offset...].withUnsafeBytes { scanner.scan($0) }
            if case .gateway(let call) = scan {
                // A gateway call the fast path sends on: NIO must read the same method, target,
                // fields, keep-alive and body length (the body itself, for this check, empty).
                let head = Array(input[offset..<(offset + call.length)])
                let parts = nioParts(head)
                guard case .head(let nio) = parts.first, nio.method == call.method, nio.uri == call.target, nio.isKeepAlive == call.keepAlive,
                    nio.headers == call.headers, (nio.headers.first(name: "Content-Length").flatMap { Int($0) } ?? 0) == call.bodyLength
                else {
                    fatalError("the fast path and NIO read \(String(decoding: head, as: UTF8.self).debugDescription) differently: \(call) against \(parts)")
                }
                return
            }
            guard case .simple(let request) = scan else { return }
            let head = Array(input[offset..<(offset + request.length)])
            let parts = nioParts(head)
            guard parts.count == 2, case .head(let nio) = parts[0], case .end(nil) = parts[1],
                nio.method == .GET, nio.uri == request.target, nio.isKeepAlive == request.keepAlive,
                nio.headers.first(name: "Accept") == request.accept
            else {
                fatalError("the fast path and NIO read \(String(decoding: head, as: UTF8.self).debugDescription) differently: \(request) against \(parts)")
            }
            offset += request.length
        }
    }

    /// What NIO's HTTP/1 server decoder makes of `head`, with the daemon's limits.
    static func nioParts(_ head: [UInt8]) -> [HTTPServerRequestPart] {
        let channel = EmbeddedChannel()
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = ServerLimits().headerBytes
        limits.maxHeaderFieldSize = ServerLimits().headerBytes
        limits.maxHeaderFieldCount = 100
        try? channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits)))
        _ = try? channel.writeInbound(ByteBuffer(bytes: head))
        var parts: [HTTPServerRequestPart] = []
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        _ = try? channel.finish()
        return parts
    }
}
