import NIOHTTP1

/// Which headers cross the gateway, each way.
enum GatewayHeaders {
    /// The caller's headers that never reach Altinn: credentials (a caller cannot pick its own
    /// token, nor smuggle one in), the broker's own delegation headers, the hop-by-hop headers of
    /// RFC 9110 (section 7.6.1) and the ones the HTTP client writes itself (`Host`, the framing).
    static let dropped: Set<String> = [
        "authorization", "cookie", "platformaccesstoken", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host",
        "content-length", "expect",
    ]

    /// The request headers sent on: the caller's end-to-end headers (`Content-Type`, `Accept`,
    /// an idempotency key...), as they came.
    static func outbound(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = connectionOptions(headers)
        var kept = HTTPHeaders()
        for (name, value) in headers {
            let lowered = name.lowercased()
            if dropped.contains(lowered) || lowered.hasPrefix("proxy-") || lowered.hasPrefix("broker-") || named.contains(lowered) { continue }
            kept.add(name: name, value: value)
        }
        return kept
    }

    /// Altinn's headers passed back: everything end to end but `Set-Cookie` (a session with
    /// Altinn is the broker's, not the caller's). The framing is the socket's own.
    static func inbound(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = connectionOptions(headers)
        var kept = HTTPHeaders()
        for (name, value) in headers {
            let lowered = name.lowercased()
            if lowered == "set-cookie" || lowered == "transfer-encoding" || lowered == "connection" || lowered == "keep-alive" || lowered == "te"
                || lowered == "trailer" || lowered == "upgrade" || lowered.hasPrefix("proxy-") || named.contains(lowered)
            {
                continue
            }
            kept.add(name: name, value: value)
        }
        return kept
    }

    /// The headers a `Connection` header names: hop-by-hop too.
    private static func connectionOptions(_ headers: HTTPHeaders) -> Set<String> {
        Set(headers[canonicalForm: "connection"].map { $0.lowercased() })
    }

    /// The delegation a caller chooses, by header, under the names the token route's query uses.
    static let delegation = [
        ("broker-system-user-org", "system_user_org"), ("broker-system-user-external-ref", "system_user_external_ref"),
        ("broker-consumer-org", "consumer_org"),
    ]

    /// The delegation choice in `headers`, as the token route's query parameters would give it.
    static func delegationChoice(_ headers: HTTPHeaders) -> [String: String] {
        var choice: [String: String] = [:]
        for (header, parameter) in delegation {
            if let value = headers.first(name: header) { choice[parameter] = value }
        }
        return choice
    }
}
