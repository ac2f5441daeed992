package import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle

/// A TCP listener that serves nothing but `GET /metrics` (`metrics_listen`), for a Prometheus
/// that cannot reach the Unix socket.
package final class MetricsListener: Service, Sendable {
    private let host: String
    private let port: Int
    private let render: @Sendable () async -> String
    private let logger: Logger

    /// A listener on `host:port` answering with `render()`.
    package init(host: String, port: Int, render: @escaping @Sendable () async -> String, logger: Logger) {
        self.host = host
        self.port = port
        self.render = render
        self.logger = logger
    }

    package func run() async throws {
        let render = self.render
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    var limits = NIOHTTPDecoderLimitConfiguration()
                    limits.maxHeaderListSize = 8192
                    limits.maxHeaderFieldCount = 50
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(
                        withPipeliningAssistance: true, withErrorHandling: true, withOutboundHeaderValidation: true,
                        withEncoderConfiguration: HTTPResponseEncoder.Configuration(), withDecoderLimitConfiguration: limits
                    )
                    try child.pipeline.syncOperations.addHandler(IdleStateHandler(allTimeout: .seconds(30)))
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                }
            }
        logger.info("metrics listening", metadata: ["address": "\(host):\(port)"])
        try await withTaskCancellationHandler {
            try await cancelWhenGracefulShutdown {
                try await channel.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in inbound {
                            group.addTask { await Self.serve(connection, render: render) }
                        }
                    }
                }
            }
        } onCancel: {
            channel.channel.close(promise: nil)
        }
    }

    private static func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, render: @Sendable () async -> String) async {
        try? await connection.executeThenClose { inbound, outbound in
            var head: HTTPRequestHead?
            for try await part in inbound {
                switch part {
                case .head(let requestHead): head = requestHead
                case .body: continue
                case .end:
                    guard let requestHead = head else { return }
                    let found = requestHead.method == .GET && requestHead.uri.split(separator: "?").first == "/metrics"
                    let body = found ? await render() : "only GET /metrics is served here\n"
                    var headers: HTTPHeaders = ["Content-Type": found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8"]
                    headers.add(name: "Content-Length", value: String(body.utf8.count))
                    try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: found ? .ok : .notFound, headers: headers)))
                    try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body))))
                    try await outbound.write(.end(nil))
                    if !requestHead.isKeepAlive { return }
                }
            }
        }
    }
}
