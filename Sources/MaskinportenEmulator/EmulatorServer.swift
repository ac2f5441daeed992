package import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials
package import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
package import NIOSSL

/// The emulator on HTTP/1.1: Maskinporten's `/token`, Altinn's exchange, and a control API under
/// `/_emulator/` for registering clients, injecting faults, changing lifetimes and reading
/// counters.
package final class EmulatorServer: Sendable {
    /// The emulator behind the server.
    package let emulator: Emulator
    /// The bound port.
    package let port: Int
    /// The bound host.
    package let host: String

    private let channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>
    private let logger: Logger

    /// Binds `host:port` (port 0 picks a free one) and returns once listening; `run()` serves.
    /// A TLS server context from PEM files: a certificate chain, leaf first, and its key.
    package static func tlsContext(certificateFile: String, keyFile: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateFile).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: keyFile, format: .pem)
        return try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key)))
    }

    /// With `tls`, it serves HTTPS (its URLs say `https://`); `publicHost` is the host its URLs
    /// name, when clients reach it by another name than the address it listens on.
    package static func bind(
        host: String = "127.0.0.1", port: Int = 0, stateDirectory: URL? = nil, signingKey: RSAPrivateKey? = nil, tls: NIOSSLContext? = nil,
        publicHost: String? = nil, logger: Logger = Logger(label: "maskinporten-emulator")
    ) async throws -> EmulatorServer {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 512)
            .bind(host: host, port: port) { child in
                child.eventLoop.makeCompletedFuture {
                    if let tls { try child.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try child.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    return try NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>(wrappingChannelSynchronously: child)
                }
            }
        guard let boundPort = channel.channel.localAddress?.port else {
            throw EmulatorStartError(description: "the emulator's socket has no port")
        }
        let named = publicHost ?? host
        let hostInURL = named.contains(":" as Character) ? "[\(named)]" : named
        let emulator = try Emulator(
            issuer: "\(tls == nil ? "http" : "https")://\(hostInURL):\(boundPort)/", stateDirectory: stateDirectory, signingKey: signingKey, logger: logger)
        return EmulatorServer(emulator: emulator, port: boundPort, host: host, channel: channel, logger: logger)
    }

    private init(
        emulator: Emulator, port: Int, host: String, channel: NIOAsyncChannel<NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, Never>,
        logger: Logger
    ) {
        self.emulator = emulator
        self.port = port
        self.host = host
        self.channel = channel
        self.logger = logger
    }

    /// Serves until the task is cancelled, then returns normally.
    package func run() async throws {
        do {
            try await withTaskCancellationHandler {
                try await channel.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { group in
                        var accepted = 0
                        for try await connection in inbound {
                            accepted += 1
                            let serial = accepted
                            group.addTask { await self.serve(connection, serial: serial) }
                        }
                    }
                }
            } onCancel: {
                channel.channel.close(promise: nil)
            }
        } catch  where Task.isCancelled {
            return
        }
    }

    // MARK: - Connections

    /// Serves one connection; `serial` numbers it among the connections accepted (tests tell a
    /// kept connection from a new one by it).
    private func serve(_ connection: NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>, serial: Int) async {
        emulator.connection(serial, open: true)
        defer { emulator.connection(serial, open: false) }
        do {
            try await connection.executeThenClose { inbound, outbound in
                var head: HTTPRequestHead?
                var body = ByteBuffer()
                for try await part in inbound {
                    switch part {
                    case .head(let requestHead):
                        head = requestHead
                        body.clear()
                    case .body(var chunk):
                        guard body.readableBytes + chunk.readableBytes <= 1 << 20 else { return }
                        body.writeBuffer(&chunk)
                    case .end:
                        guard let requestHead = head else { return }
                        let request = EmulatorRequest(head: requestHead, body: Array(body.readableBytesView), connection: serial)
                        let reply = route(request)
                        if let delay = reply.delay { try await Task.sleep(for: delay) }
                        switch reply.action {
                        case .drop:
                            return
                        case .hang:
                            try await Task.sleep(for: .seconds(3600))
                            return
                        case .trickle(let gap):
                            // No length: NIO frames the body chunked, each piece a chunk.
                            var headers = reply.headers
                            headers.remove(name: "Content-Length")
                            try await outbound.write(.head(HTTPResponseHead(version: requestHead.version, status: .continue)))
                            try await Task.sleep(for: gap)
                            try await outbound.write(.head(HTTPResponseHead(version: requestHead.version, status: reply.status, headers: headers)))
                            let third = max(1, reply.body.count / 3)
                            for start in stride(from: 0, to: reply.body.count, by: third) {
                                try await Task.sleep(for: gap)
                                try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: reply.body[start..<min(start + third, reply.body.count)]))))
                            }
                            try await outbound.write(.end(nil))
                            if !requestHead.isKeepAlive { return }
                        case .respond:
                            var headers = reply.headers
                            headers.replaceOrAdd(name: "Content-Length", value: String(reply.body.count))
                            headers.replaceOrAdd(
                                name: "Date", value: Self.httpDate(emulator.now.addingTimeInterval(TimeInterval(emulator.settings.dateOffset))))
                            if !requestHead.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
                            try await outbound.write(.head(HTTPResponseHead(version: requestHead.version, status: reply.status, headers: headers)))
                            try await outbound.write(.body(.byteBuffer(ByteBuffer(bytes: reply.body))))
                            try await outbound.write(.end(nil))
                            if !requestHead.isKeepAlive { return }
                        }
                    }
                }
            }
        } catch {
            logger.debug("connection ended", metadata: ["error": "\(error)"])
        }
    }

    // MARK: - Routes

    func route(_ request: EmulatorRequest) -> EmulatorReply {
        switch (request.method, request.path) {
        case (.POST, "/token"):
            return tokenEndpoint(request)
        case (.GET, "/authentication/api/v1/exchange/maskinporten"):
            return exchangeEndpoint(request)
        case (.GET, "/authentication/api/v1/exchange/id-porten"):
            return exchangeEndpoint(request, idPorten: true)
        case (.POST, "/_emulator/idporten-token"):
            struct Ask: Decodable {
                var pid: String?
                var lifetime: Int?
            }
            let ask = request.decode(Ask.self)
            guard let pid = ask?.pid, let token = try? emulator.mintIDPortenToken(pid: pid, lifetime: ask?.lifetime ?? 600) else {
                return .json(
                    .badRequest,
                    ["error": "invalid_request", "error_description": "expected {\"pid\": \"11-digit national identity number\", \"lifetime\": seconds}"])
            }
            return .json(.ok, ["access_token": .string(token), "token_type": "Bearer"])
        case (.GET, "/.well-known/oauth-authorization-server"):
            return .json(
                .ok,
                [
                    "issuer": .string(emulator.issuer), "token_endpoint": .string(emulator.tokenEndpoint),
                    "jwks_uri": .string(emulator.issuer + "jwk"),
                    "grant_types_supported": .array([.string("urn:ietf:params:oauth:grant-type:jwt-bearer")]),
                    "token_endpoint_auth_signing_alg_values_supported": .array(["RS256", "RS384", "RS512"].map(JSONValue.string)),
                ])
        case (.GET, "/jwk"):
            return .encodable(.ok, ["keys": emulator.jwks])
        case (.GET, "/healthz"):
            return EmulatorReply(status: .ok, headers: ["Content-Type": "text/plain"], body: Array("ok\n".utf8))
        case (.GET, "/_emulator/connections"):
            return .encodable(.ok, ["open": emulator.openConnections])
        case (.GET, "/_emulator/stats"):
            return .encodable(.ok, emulator.stats)
        case (.POST, "/_emulator/stats/reset"):
            emulator.resetStats()
            return .encodable(.ok, emulator.stats)
        case (.GET, "/_emulator/clients"):
            return .encodable(.ok, emulator.clients.sorted { $0.clientID < $1.clientID })
        case (.POST, "/_emulator/clients"):
            guard let client = request.decode(RegisteredClient.self) else {
                // keygen prints the array itself: pasted inside [ ], it nests, and a JWK
                // decoder's complaint about it would not say so.
                let nested = request.decode(JSONValue.self)?.object?["keys"]?.array?.contains { $0.array != nil } == true
                return .json(
                    .badRequest,
                    [
                        "error": "invalid_request",
                        "error_description": nested
                            ? "\"keys\" holds an array inside its array: keygen prints the array already, so give it as \"keys\":$(cat public.json), not \"keys\":[$(cat public.json)]"
                            : "expected {\"client_id\", \"scopes\": [...], \"keys\": [JWK...], \"certificates\": [base64 DER...]}",
                    ])
            }
            emulator.register(client)
            return .encodable(.created, client)
        case (.DELETE, "/_emulator/faults"):
            emulator.clearFaults()
            return EmulatorReply(status: .noContent)
        case (.GET, "/_emulator/settings"):
            return .encodable(.ok, emulator.settings)
        case (.PUT, "/_emulator/settings"):
            guard let settings = request.decode(EmulatorSettings.self) else {
                return .json(
                    .badRequest,
                    ["error": "invalid_request", "error_description": "expected {\"token_lifetime\", \"altinn_token_lifetime\", \"altinn_exp_offset\"}"])
            }
            emulator.settings = settings
            return .encodable(.ok, settings)
        default:
            if request.path.hasPrefix(Self.selfServicePrefix) { return selfServiceEndpoint(request) }
            if request.path.hasPrefix(Self.notificationsPrefix) { return notificationsEndpoint(request) }
            if request.method == .GET, request.path == "/_emulator/notifications" {
                let state = emulator.notifications
                return .encodable(.ok, NotificationsReport(stats: state.stats, lastRequest: state.lastRequest))
            }
            if request.method == .POST, request.path == "/_emulator/notifications/revoke" {
                struct Ask: Decodable { var all: Bool? }
                emulator.revokeTokens(all: request.decode(Ask.self)?.all ?? false)
                return EmulatorReply(status: .noContent)
            }
            if request.method == .DELETE, request.path == "/_emulator/notifications/revoke" {
                emulator.restoreTokens()
                return EmulatorReply(status: .noContent)
            }
            if request.method == .GET, request.path.hasPrefix("/_emulator/blob/") {
                // A large answer for streaming tests: /_emulator/blob/BYTES.
                let size = min(max(Int(request.path.dropFirst("/_emulator/blob/".count)) ?? 0, 0), 512 << 20)
                return EmulatorReply(
                    status: .ok, headers: ["Content-Type": "application/octet-stream"], body: [UInt8](repeating: UInt8(ascii: "x"), count: size))
            }
            if request.method == .POST, request.path.hasPrefix("/_emulator/faults/") {
                guard let target = FaultTarget(rawValue: String(request.path.dropFirst("/_emulator/faults/".count))),
                    let fault = request.decode(Fault.self)
                else {
                    return .json(
                        .badRequest,
                        [
                            "error": "invalid_request",
                            "error_description":
                                "POST /_emulator/faults/{token|exchange|jwks|notifications} with {\"status\", \"retry_after\", \"delay_ms\", \"drop\", \"hang\", \"garbage\", \"trickle\", \"gap_ms\", \"count\"}",
                        ])
                }
                emulator.inject(fault, into: target)
                return .encodable(.created, fault)
            }
            return .json(.notFound, ["error": "not_found", "error_description": .string("no route \(request.method) \(request.path)")])
        }
    }

    /// The answer of `answer`, unless a fault injected into `target` replaces or delays it.
    func faulted(_ target: FaultTarget, _ answer: () -> EmulatorReply) -> EmulatorReply {
        let fault = emulator.takeFault(target)
        if let fault, fault.replacesAnswer { return .fault(fault) }
        var reply = answer()
        reply.delay = fault?.delay
        if let fault, fault.trickle == true { reply.action = .trickle(gap: .milliseconds(fault.gapMilliseconds ?? 30)) }
        return reply
    }

    private func tokenEndpoint(_ request: EmulatorRequest) -> EmulatorReply {
        emulator.count { $0.tokenRequests += 1 }
        return faulted(.token) { tokenAnswer(request) }
    }

    private func tokenAnswer(_ request: EmulatorRequest) -> EmulatorReply {
        let form = request.form
        guard form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer" else {
            emulator.count { $0.grantsRefused += 1 }
            return .json(
                .badRequest, ["error": "unsupported_grant_type", "error_description": "grant_type must be urn:ietf:params:oauth:grant-type:jwt-bearer"])
        }
        guard let assertion = form["assertion"], !assertion.isEmpty else {
            emulator.count { $0.grantsRefused += 1 }
            return .json(.badRequest, ["error": "invalid_request", "error_description": "the assertion parameter is missing"])
        }
        switch emulator.issueToken(assertion: assertion) {
        case .success(let answer):
            emulator.count { $0.tokensIssued += 1 }
            var reply = EmulatorReply.json(.ok, answer)
            reply.headers.add(name: "Cache-Control", value: "no-store")
            return reply
        case .failure(let refusal):
            let violation = refusal.violation
            let detail = refusal.detail
            emulator.count { $0.grantsRefused += 1 }
            emulator.logger.info("grant refused", metadata: ["code": "\(violation.rawValue)", "detail": "\(detail ?? "")"])
            return .json(
                .badRequest,
                [
                    "error": .string(violation.error), "error_description": .string(violation.description(detail: detail)),
                    "error_uri": "https://docs.digdir.no/docs/Maskinporten/maskinporten_feilsoking",
                ])
        }
    }

    private func exchangeEndpoint(_ request: EmulatorRequest, idPorten: Bool = false) -> EmulatorReply {
        emulator.count { $0.exchangeRequests += 1 }
        return faulted(.exchange) { exchangeAnswer(request, idPorten: idPorten) }
    }

    private func exchangeAnswer(_ request: EmulatorRequest, idPorten: Bool) -> EmulatorReply {
        let authorization = request.head.headers.first(name: "Authorization")
        let bearer = authorization.flatMap { $0.lowercased().hasPrefix("bearer ") ? String($0.dropFirst(7)).trimmed() : nil }
        switch idPorten ? emulator.exchangeIDPorten(bearer: bearer) : emulator.exchange(bearer: bearer, test: request.query["test"] == "true") {
        case .success(let token):
            emulator.count { $0.exchangesIssued += 1 }
            // Altinn answers with the bare token as text, or as a JSON string when JSON is asked for.
            if request.head.headers.first(name: "Accept")?.containsText("application/json") == true {
                let quoted = (try? JSONEncoder().encode(token)).map(Array.init) ?? []
                return EmulatorReply(status: .ok, headers: ["Content-Type": "application/json; charset=utf-8"], body: quoted)
            }
            return EmulatorReply(status: .ok, headers: ["Content-Type": "text/plain; charset=utf-8"], body: Array(token.utf8))
        case .failure(let refusal):
            emulator.count { $0.exchangesRefused += 1 }
            return .json(
                HTTPResponseStatus(statusCode: refusal.status),
                [
                    "type": "https://tools.ietf.org/html/rfc9110#section-15.5.2", "title": .string(refusal.title),
                    "status": .number(Double(refusal.status)), "detail": .string(refusal.detail),
                ])
        }
    }

    static func httpDate(_ date: Date) -> String {
        UTCTimestamp.httpDate(secondsSince1970: Int(date.timeIntervalSince1970.rounded(.down)))
    }
}

/// Why the emulator could not start serving.
struct EmulatorStartError: Error, CustomStringConvertible {
    var description: String
}

// MARK: - Request and reply

/// One HTTP request, whole.
struct EmulatorRequest {
    var head: HTTPRequestHead
    var body: [UInt8]
    /// The serial number of the connection it came on.
    var connection = 0

    var method: HTTPMethod { head.method }
    var path: String { String(head.uri.split(separator: "?", maxSplits: 1).first ?? "") }
    var query: [String: String] {
        guard let index = head.uri.firstIndex(of: "?") else { return [:] }
        return Self.formDecode(String(head.uri[head.uri.index(after: index)...]))
    }
    var form: [String: String] { Self.formDecode(String(decoding: body, as: UTF8.self)) }

    func decode<T: Decodable>(_ type: T.Type) -> T? {
        try? JSONDecoder().decode(type, from: Data(body.isEmpty ? Array("{}".utf8) : body))
    }

    static func formDecode(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1)
            let decode = { (part: Substring) in PercentEncoding.decode(String(part.map { $0 == "+" ? " " : $0 })) ?? String(part) }
            fields[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return fields
    }
}

/// What to do with a request.
struct EmulatorReply {
    enum Action {
        case respond, drop, hang
        case trickle(gap: Duration)
    }

    var status: HTTPResponseStatus
    var headers: HTTPHeaders = [:]
    var body: [UInt8] = []
    var action: Action = .respond
    var delay: Duration?

    static func json(_ status: HTTPResponseStatus, _ object: [String: JSONValue]) -> EmulatorReply {
        encodable(status, object)
    }

    static func encodable(_ status: HTTPResponseStatus, _ value: some Encodable) -> EmulatorReply {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(value)).map(Array.init) ?? []
        return EmulatorReply(status: status, headers: ["Content-Type": "application/json; charset=utf-8"], body: body)
    }

    static func fault(_ fault: Fault) -> EmulatorReply {
        var reply: EmulatorReply
        if fault.drop == true {
            reply = EmulatorReply(status: .ok, action: .drop)
        } else if fault.hang == true {
            reply = EmulatorReply(status: .ok, action: .hang)
        } else if fault.garbage == true {
            reply = EmulatorReply(
                status: .ok, headers: ["Content-Type": "application/json"], body: Array("<html><body>502 Bad Gateway</body></html>\u{0}\u{7f}".utf8))
        } else if let status = fault.status {
            reply = .json(HTTPResponseStatus(statusCode: status), ["error": "server_error", "error_description": .string("injected fault: HTTP \(status)")])
            if let retryAfter = fault.retryAfter { reply.headers.add(name: "Retry-After", value: String(retryAfter)) }
        } else {
            reply = .json(.internalServerError, ["error": "server_error", "error_description": "injected fault"])
        }
        reply.delay = fault.delay
        return reply
    }
}
