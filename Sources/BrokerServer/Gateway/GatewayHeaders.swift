import BrokerPOSIX
import NIOHTTP1

/// Which headers cross the gateway, each way.
enum GatewayHeaders {
    /// The caller's headers that never reach Altinn: credentials (a caller cannot pick its own
    /// token, nor smuggle one in), the broker's own delegation headers, the hop-by-hop headers of
    /// RFC 9110 (section 7.6.1) and the ones the HTTP client writes itself (`Host`, the framing).
    static let dropped: [StaticString] = [
        "authorization", "cookie", "platformaccesstoken", "connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host",
        "content-length", "expect",
    ]

    /// Altinn's headers that do not come back: a session with Altinn is the broker's, not the
    /// caller's; the hop-by-hop ones; the framing is the socket's own.
    static let droppedInbound: [StaticString] = ["set-cookie", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade"]

    /// The request headers sent on: the caller's end-to-end headers (`Content-Type`, `Accept`,
    /// an idempotency key...), as they came.
    static func outbound(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = connectionOptions(headers)
        var kept = HTTPHeaders()
        for (name, value) in headers {
            if matches(name, dropped, prefixes: ["proxy-", "broker-"]) || (!named.isEmpty && named.contains(name.lowercased())) { continue }
            kept.add(name: name, value: value)
        }
        return kept
    }

    /// Altinn's headers passed back: everything end to end but `Set-Cookie` and the hop-by-hop
    /// ones.
    static func inbound(_ headers: HTTPHeaders) -> HTTPHeaders {
        let named = connectionOptions(headers)
        var kept = HTTPHeaders()
        for (name, value) in headers {
            var name = name
            if !name.withUTF8({ passesInbound(UnsafeRawBufferPointer($0), named: named) }) { continue }
            kept.add(name: name, value: value)
        }
        return kept
    }

    /// Whether Altinn's header `name` (its bytes) comes back to the caller, `named` being what
    /// the answer's `Connection` header lists (lower case): the one rule, for the headers NIO
    /// parsed and for the fast path's bytes.
    static func passesInbound(_ name: UnsafeRawBufferPointer, named: Set<String>) -> Bool {
        if matches(name, droppedInbound, prefixes: ["proxy-"]) { return false }
        return named.isEmpty || !named.contains(String(decoding: name, as: UTF8.self).lowercased())
    }

    /// Whether `name` is one of `names` or starts with one of `prefixes`, in any letter case;
    /// compared as bytes (a lowercased copy of every header name was a tenth of a forwarded
    /// call's CPU).
    private static func matches(_ name: String, _ names: [StaticString], prefixes: [StaticString]) -> Bool {
        var name = name
        return name.withUTF8 { matches(UnsafeRawBufferPointer($0), names, prefixes: prefixes) }
    }

    private static func matches(_ bytes: UnsafeRawBufferPointer, _ names: [StaticString], prefixes: [StaticString]) -> Bool {
        for candidate in names where ASCIIText.equalsIgnoringCase(bytes, 0..<bytes.count, candidate) { return true }
        for prefix in prefixes where bytes.count >= prefix.utf8CodeUnitCount {
            if ASCIIText.equalsIgnoringCase(bytes, 0..<prefix.utf8CodeUnitCount, prefix) { return true }
        }
        return false
    }

    /// The headers a `Connection` header names: hop-by-hop too.
    private static func connectionOptions(_ headers: HTTPHeaders) -> Set<String> {
        var named: Set<String> = []
        for value in headers["connection"] {
            // The usual values name no header: no list to split.
            var value = value
            let plain = value.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                return ASCIIText.equalsIgnoringCase(bytes, 0..<bytes.count, "keep-alive") || ASCIIText.equalsIgnoringCase(bytes, 0..<bytes.count, "close")
            }
            if plain { continue }
            for option in value.split(separator: ",") { named.insert(option.trimmed().lowercased()) }
        }
        return named
    }

    /// The delegation a caller chooses, by header, under the names the token route's query uses.
    static let delegation: [(header: StaticString, parameter: String)] = [
        ("broker-system-user-org", "system_user_org"), ("broker-system-user-external-ref", "system_user_external_ref"),
        ("broker-consumer-org", "consumer_org"),
    ]

    /// The delegation choice in `headers`, as the token route's query parameters would give it.
    static func delegationChoice(_ headers: HTTPHeaders) -> [String: String] {
        var choice: [String: String] = [:]
        // One pass over the headers, each name's first bytes compared (the usual call has no
        // `Broker-` header, and three lookups by name cost a tenth of the checks); a header's
        // first value counts, as `HTTPHeaders.first(name:)` gives it.
        for (name, value) in headers where matches(name, [], prefixes: ["broker-"]) {
            var name = name
            let parameter = name.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                return delegation.first { ASCIIText.equalsIgnoringCase(bytes, 0..<bytes.count, $0.header) }?.parameter
            }
            if let parameter, choice[parameter] == nil { choice[parameter] = value }
        }
        return choice
    }
}
