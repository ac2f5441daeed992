internal import BrokerPOSIX

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension ClientCommands {
    /// What `api` asks for: one Altinn API call through the daemon's gateway.
    package struct ApiRequest: Equatable, Sendable {
        /// Where the body comes from.
        package enum Data: Equatable, Sendable {
            /// `--data TEXT`.
            case text(String)
            /// `--data @FILE`.
            case file(String)
            /// `--data @-`.
            case standardInput
        }

        /// The profile.
        package var profile: String
        /// The method: as given, else POST with a body and GET without.
        package var method: String
        /// The API path, such as `/notifications/api/v1/future/orders`, with any query.
        package var path: String
        /// `--data`.
        package var data: Data?
        /// `--header 'Name: value'`, in order.
        package var headers: [String] = []
        /// `--include`: the status line and headers before the body.
        package var include = false
        /// `--socket`.
        package var socket: String?
        /// `--system-user-org`, `--external-ref`, `--consumer-org`: the delegation, for a profile
        /// whose `delegation:` lets callers choose it.
        package var systemUserOrg: String?
        package var externalRef: String?
        package var consumerOrg: String?

        /// A call of `method` (nil: by whether there is a body) to `path` with `profile`'s token.
        package init(profile: String, method: String?, path: String, data: Data? = nil) {
            self.profile = profile
            self.method = method ?? (data == nil ? "GET" : "POST")
            self.path = path
            self.data = data
        }

        /// The socket's target: `/v1/api/PROFILE/PATH`.
        package var target: String {
            "/v1/api/" + ClientCommands.percentEncode(profile) + (path.hasPrefix("/") ? path : "/" + path)
        }

        /// The request's headers: the caller's, the delegation's, and a JSON content type for a
        /// body when none is given.
        var requestHeaders: [(String, String)] {
            var result: [(String, String)] = []
            for header in headers {
                guard let colon = header.firstIndex(of: ":") else { continue }
                result.append((String(header[..<colon]), header[header.index(after: colon)...].trimmed()))
            }
            if data != nil, !result.contains(where: { $0.0.lowercased() == "content-type" }) { result.append(("Content-Type", "application/json")) }
            if !result.contains(where: { $0.0.lowercased() == "accept" }) { result.append(("Accept", "application/json")) }
            if let systemUserOrg { result.append(("Broker-System-User-Org", systemUserOrg)) }
            if let externalRef { result.append(("Broker-System-User-External-Ref", externalRef)) }
            if let consumerOrg { result.append(("Broker-Consumer-Org", consumerOrg)) }
            return result
        }
    }

    /// `api`'s exit status when the broker could not be reached or did not answer.
    package static let apiUnreachable: Int32 = 3
    /// `api`'s exit status for a call it cannot make as given.
    package static let apiUsage: Int32 = 2

    /// `api PROFILE [METHOD] PATH [--data @FILE|@-|TEXT] [--header 'K: V']... [--include]`: the
    /// answer's body on standard output; its status on standard error when it is not 2xx.
    /// Exit 0 for 2xx, 1 for any other status, 2 for a call that cannot be made as given, 3 when
    /// the broker cannot be reached.
    package static func api(_ request: ApiRequest) -> Int32 {
        var body: [UInt8] = []
        switch request.data {
        case .text(let text)?: body = Array(text.utf8)
        case .file(let path)?:
            do throws(SystemError) {
                body = try FileContents.read(path)
            } catch {
                printError("maskinporten-broker api: cannot read \(path): \(String(cString: strerror(error.errno)))")
                return apiUsage
            }
        case .standardInput?: body = (try? FileContents.read(descriptor: 0)) ?? []
        case nil: break
        }
        var client = SocketClient(path: SocketClient.resolvePath(request.socket))
        client.timeoutSeconds = 330
        let response: SocketClient.Response
        do {
            response = try client.request(request.method, request.target, headers: request.requestHeaders, body: body, limit: 256 << 20)
        } catch {
            printError("maskinporten-broker api: \(error)")
            return apiUnreachable
        }
        var output: [UInt8] = []
        if request.include {
            var head = "HTTP/1.1 \(response.status)\r\n"
            for (name, value) in response.headers { head += "\(name): \(value)\r\n" }
            output = Array((head + "\r\n").utf8)
        }
        output += response.body
        writeAll(1, output)
        guard (200..<300).contains(response.status) else {
            let fromBroker = response.headers.contains { $0.0 == "broker-error" && $0.1 == "true" }
            printError(
                "maskinporten-broker api: HTTP \(response.status)"
                    + (fromBroker ? " from the broker: \(ErrorBodyText.summary(response.text))" : " from Altinn"))
            return 1
        }
        return 0
    }
}
