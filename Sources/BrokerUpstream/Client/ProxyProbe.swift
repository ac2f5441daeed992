import BrokerConfig
import BrokerCrypto
import BrokerPOSIX
import NIOCore
import NIOPosix

/// Asks a proxy for a tunnel once more, by hand, to learn its status line. The HTTP library
/// reports a CONNECT answered with anything but 2xx or 407 as one "invalid proxy response";
/// the status tells the hops apart: 403 is the proxy's rules, 502-504 the target beyond it.
/// Used only after such a failure, so a proxy that refuses is asked twice per attempt, within
/// the usual backoff.
enum ProxyProbe {
    /// What the proxy answered: its status and reason phrase (cleaned as `UpstreamAnswer` cleans).
    struct Answer: Sendable, Equatable {
        var status: Int
        var reason: String

        /// What a CONNECT to `target` answered with this status means, in the words of an error.
        func refusal(by server: ProxySettings.Server, of target: String) -> String {
            switch status {
            case 500...599:
                "the proxy could not reach \(target) (HTTP \(status) \(reason)): the target is unreachable from the proxy"
            case 407 where server.username == nil:
                "the proxy asks for credentials (HTTP 407 Proxy Authentication Required): give them in the proxy URL, http://USER:PASSWORD@HOST:PORT"
            case 407, 401:
                // tinyproxy answers wrong credentials with 401.
                "the proxy refused the credentials given (HTTP \(status) \(reason)): check the user and password in the proxy URL"
            default:
                "the proxy refused the CONNECT to \(target) (HTTP \(status) \(reason)): its rules must allow this host and port"
            }
        }
    }

    /// The proxy's answer to `CONNECT host:port`, or why there was none.
    static func ask(_ server: ProxySettings.Server, host: String, port: Int, timeout: Duration) async -> Result<Answer, ProbeFailure> {
        await withTimeLimit(timeout) {
            await connect(server, host: host, port: port, timeout: timeout)
        } ?? .failure(ProbeFailure(reason: "no answer within \(timeout.components.seconds) s"))
    }

    struct ProbeFailure: Error, Sendable {
        var reason: String
    }

    private static func connect(_ server: ProxySettings.Server, host: String, port: Int, timeout: Duration) async -> Result<Answer, ProbeFailure> {
        do {
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(timeout))
                .connect(host: server.host, port: server.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
            let line = try await channel.executeThenClose { inbound, outbound in
                try await outbound.write(ByteBuffer(string: request(server, host: host, port: port)))
                var head = ByteBuffer()
                for try await chunk in inbound {
                    head.writeImmutableBuffer(chunk)
                    if head.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) != nil || head.readableBytes > 4096 { break }
                }
                return head.readableBytesView.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
            }
            return parse(Array(line)).map(Result.success) ?? .failure(ProbeFailure(reason: "its answer is not HTTP"))
        } catch {
            return .failure(ProbeFailure(reason: "\(error)"))
        }
    }

    /// `CONNECT host:port HTTP/1.1`, with Basic credentials when the proxy URL has them.
    static func request(_ server: ProxySettings.Server, host: String, port: Int) -> String {
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        var text = "CONNECT \(authority) HTTP/1.1\r\nHost: \(authority)\r\n"
        if let username = server.username {
            var credentials = Array("\(username):\(server.password ?? "")".utf8)
            defer { credentials.resetSecretBytes() }
            text += "Proxy-Authorization: Basic \(Base64.standardEncoded(credentials))\r\n"
        }
        return text + "\r\n"
    }

    /// `HTTP/1.1 403 Forbidden` as status and reason.
    static func parse(_ line: [UInt8]) -> Answer? {
        let parts = line.split(separator: UInt8(ascii: " "), maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].starts(with: Array("HTTP/".utf8)), parts[1].count == 3,
            let status = Int(String(decoding: parts[1], as: UTF8.self))
        else { return nil }
        // The proxy's words, cleaned as every upstream's are before they reach an error.
        return Answer(status: status, reason: parts.count > 2 ? UpstreamAnswer.clean(String(decoding: parts[2], as: UTF8.self)) : "")
    }
}
