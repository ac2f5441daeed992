import BrokerConfig
import BrokerCrypto
import BrokerPOSIX

/// The CONNECT that opens a tunnel through a proxy (`ProxyTunnel` sends it), and what the
/// proxy's status line means: the status tells the hops apart, 403 the proxy's rules, 407 its
/// credentials, 502-504 the target beyond it.
enum ProxyConnect {
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
