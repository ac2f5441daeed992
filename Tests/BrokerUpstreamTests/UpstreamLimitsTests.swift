import Logging
import NIOCore
import NIOPosix
import Testing

@testable import BrokerUpstream

/// A token call's limits on the one upstream client, against a loopback server that answers
/// with fixed bytes: an answer larger than the limit is refused, and one whose body stops
/// coming is given up at the total timeout (the head alone is not an answer).
@Suite("Token calls: the answer's size and time limits")
struct UpstreamLimitsTests {
    /// Writes `answer` to each connection once its request has come, and keeps it open.
    final class FixedAnswer: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let answer: String
        init(_ answer: String) { self.answer = answer }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
        }
    }

    static func serving(_ answer: String, _ body: (String) async throws -> Void) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FixedAnswer(answer)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body("http://127.0.0.1:\(server.localAddress!.port!)")
        } catch {
            try? await server.close()
            throw error
        }
        try await server.close()
    }

    @Test("an answer over 256 KiB is refused as malformed, named")
    func tooLarge() async throws {
        let size = 300 * 1024
        try await Self.serving("HTTP/1.1 200 OK\r\nContent-Length: \(size)\r\n\r\n" + String(repeating: "x", count: size)) { platform in
            let client = try UpstreamClient(logger: Logger(label: "test"))
            let error = await #expect(throws: TokenError.self) {
                try await client.exchange(maskinportenToken: "t", platform: platform, testOrganisation: false)
            }
            #expect(error?.kind == .malformed && error?.reason == "Altinn's answer is larger than 256 KiB", "\(String(describing: error))")
            try await client.shutdown()
        }
    }

    @Test("a head whose body never comes is given up at the total timeout")
    func bodyStalls() async throws {
        try await Self.serving("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this") { platform in
            let client = try UpstreamClient(timeouts: .init(connect: .seconds(1), total: .seconds(1)), logger: Logger(label: "test"))
            let started = ContinuousClock.now
            let error = await #expect(throws: TokenError.self) {
                try await client.exchange(maskinportenToken: "t", platform: platform, testOrganisation: false)
            }
            #expect(error?.kind == .unavailable && error?.reason == "Altinn did not answer in time", "\(String(describing: error))")
            #expect(started.duration(to: .now) < .seconds(10), "given up at the limit, not the connection's idle limit")
            try await client.shutdown()
        }
    }
}
