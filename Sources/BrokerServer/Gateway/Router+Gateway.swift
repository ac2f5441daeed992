import BrokerConfig
import BrokerTokens
package import BrokerUpstream
package import NIOCore
package import NIOHTTP1

/// What the router answers: an answer of the broker's own (every route's, and the gateway's
/// refusals and errors), or Altinn's through the gateway, whose body streams to the caller.
package enum RouterAnswer: Sendable {
    /// The broker's answer, whole.
    case whole(BrokerResponse)
    /// Altinn's answer: its head now, its body as it comes.
    case streamed(StreamedAnswer)
}

/// Altinn's answer on its way to the caller.
package struct StreamedAnswer: Sendable {
    /// Altinn's status.
    package var status: HTTPResponseStatus
    /// Altinn's end-to-end headers.
    package var headers: HTTPHeaders
    /// The body, read as the caller's connection takes it.
    package var body: ForwardedAnswer.Body
    /// Called once, when the body has been written or writing it stopped, with the bytes
    /// written: the request's audit line and metrics.
    package var finished: @Sendable (_ bytesOut: Int, _ complete: Bool) -> Void
}

extension Router {
    /// The body size a gateway request for `path` may have, when `path` is one and its profile
    /// has a gateway; nil: the socket's usual limit applies (and the router refuses the request).
    package func gatewayBodyLimit(path: String) -> Int? {
        let (route, name) = Route.match(path)
        guard route == .api else { return nil }
        return state().profiles[String(name)]?.gateway?.maxBodyBytes
    }

    /// `ANY /v1/api/{profile}/{path}`: checked (profile, gateway, allow list, delegation, path)
    /// before anything goes upstream, then sent to the profile's Altinn platform with its token;
    /// a 401 gets one new token and one replay.
    package func forward(_ request: BrokerRequest, peer: PeerCredentials) async -> RouterAnswer {
        let started = ContinuousClock.now
        let (_, name) = Route.match(request.path)
        let profileName = String(name)
        let method = Self.methodLabel(request.method)
        let apiPath = request.path[name.endIndex...]
        func own(_ response: BrokerResponse, variant: TokenVariant? = nil, audit: Bool = true) -> RouterAnswer {
            var response = response
            response.headers.replaceOrAdd(name: "Broker-Error", value: "true")
            metrics.request(route: Route.api.rawValue, status: response.status.code)
            if audit {
                metrics.gatewayRequest(profile: profileName, method: method, status: nil)
                auditor.forwarded(
                    Auditor.GatewayCall(
                        profile: profileName, variant: variant, method: method, path: apiPath, status: Int(response.status.code), brokerAnswered: true,
                        took: started.duration(to: .now), bytesIn: request.body.readableBytes, bytesOut: response.body.readableBytes, replayed: false,
                        incomplete: false),
                    peer: peer)
            }
            return .whole(response)
        }
        let state = state()
        guard let profile = state.profiles[profileName] ?? state.configuration.profiles.first(where: { $0.name == profileName }) else {
            return own(.error(.notFound, "unknown_profile", "no profile named \"\(Self.printable(profileName))\""), audit: false)
        }
        guard let gateway = profile.gateway else {
            return own(
                .error(
                    .notFound, "gateway_not_enabled",
                    "profile \"\(profileName)\" has no gateway: section, so the broker does not send Altinn API calls for it; add gateway: to the profile to enable /v1/api/\(profileName)/"
                ),
                audit: false)
        }
        // The allow list, the delegation headers and the cache, exactly as for the profile's token.
        let cache: TokenCache
        let overflow: AuditSettings.Overflow
        switch tokenRequest(profile: profileName, choice: GatewayHeaders.delegationChoice(request.headers), peer: peer) {
        case .answer(let refusal):
            return own(refusal, audit: false)
        case .ready(let ready, _, _, let auditOverflow):
            cache = ready
            overflow = auditOverflow
        }
        let variant = cache.variant
        let path: Substring
        switch GatewayPath.judge(apiPath, prefixes: gateway.paths) {
        case .success(let judged): path = judged
        case .failure(.malformed(let reason)): return own(.error(.badRequest, "invalid_path", reason), variant: variant)
        case .failure(.notAllowed(let prefixes)):
            return own(
                .error(
                    .forbidden, "path_not_allowed",
                    "profile \"\(profileName)\"'s gateway lets callers reach \(prefixes) only; add the API's prefix to gateway.paths to allow it"),
                variant: variant)
        }
        guard let platform = profile.environment.altinnPlatform, let upstream = broker.upstream(for: profile.environment) else {
            return own(.error(.serviceUnavailable, "profile_unavailable", "profile \"\(profileName)\" has no Altinn platform to send to"), variant: variant)
        }
        if auditor.refuses(overflow) {
            return own(
                .error(
                    .serviceUnavailable, "audit_unavailable",
                    "the audit log is not being written (its destination does not take lines) and audit.on_overflow is refuse: no request is sent until it is",
                    retryAfter: .seconds(1)),
                variant: variant, audit: false)
        }
        var headers = GatewayHeaders.outbound(request.headers)
        if let issuerName = gateway.platformAccessToken {
            guard let issuer = state.platformAccessTokens[issuerName], let platformToken = try? issuer.token() else {
                let reason = state.unavailablePlatformAccessTokens[issuerName] ?? "it could not be signed"
                return own(
                    .error(.serviceUnavailable, "profile_unavailable", "platform access token \"\(issuerName)\" for the gateway cannot be had: \(reason)"),
                    variant: variant)
            }
            headers.add(name: "PlatformAccessToken", value: platformToken.value)
        }
        var token: IssuedToken
        if let held = cache.heldToken() {
            token = held
        } else {
            do {
                token = try await cache.token()
            } catch {
                return own(Self.response(for: error), variant: variant)
            }
        }
        let url = platform + path + (request.rawQuery.map { "?" + $0 } ?? "")
        var call = ForwardedRequest(
            method: request.method, url: url, headers: headers, body: request.body, timeout: .seconds(gateway.timeoutSeconds))
        var replayed = false
        var answer: ForwardedAnswer
        while true {
            call.headers.replaceOrAdd(name: "Authorization", value: "Bearer " + token.value)
            let asked = ContinuousClock.now
            do {
                answer = try await upstream.forward(call)
            } catch {
                return own(Self.response(for: error), variant: variant)
            }
            metrics.gatewayUpstream(profile: profileName, took: asked.duration(to: .now))
            // A 401 is the token's fault (revoked, or stale by Altinn's clock): one new token,
            // shared by every request refused the same token, and one replay. A 403 is a missing
            // scope or right, which a new token would not mend: it goes to the caller.
            guard answer.status == 401, !replayed else { break }
            await answer.body.discard()
            metrics.gatewayReplay(profile: profileName)
            replayed = true
            do {
                token = try await cache.replacing(token)
            } catch {
                return own(Self.response(for: error), variant: variant)
            }
        }
        let status = answer.status
        let router = self
        let bytesIn = request.body.readableBytes
        let wasReplayed = replayed
        metrics.request(route: Route.api.rawValue, status: UInt(status))
        return .streamed(
            StreamedAnswer(
                status: HTTPResponseStatus(statusCode: status), headers: GatewayHeaders.inbound(answer.headers), body: answer.body,
                finished: { bytesOut, complete in
                    router.metrics.gatewayRequest(profile: profileName, method: method, status: status)
                    router.auditor.forwarded(
                        Auditor.GatewayCall(
                            profile: profileName, variant: variant, method: method, path: path, status: status, brokerAnswered: false,
                            took: started.duration(to: .now), bytesIn: bytesIn, bytesOut: bytesOut, replayed: wasReplayed, incomplete: !complete),
                        peer: peer)
                }))
    }

    /// The client's answer when a forwarded call got no answer.
    static func response(for failure: ForwardingFailure) -> BrokerResponse {
        switch failure {
        case .unreachable(let reason): .error(.badGateway, "upstream_unavailable", reason)
        case .timedOut(let reason): .error(.gatewayTimeout, "upstream_timeout", reason)
        case .stopped: .error(.serviceUnavailable, "upstream_unavailable", "the request was stopped: the daemon is stopping")
        }
    }

    /// The method as metrics and the audit name it: a caller's own method name is not a label.
    static func methodLabel(_ method: HTTPMethod) -> String {
        switch method {
        case .GET, .POST, .PUT, .PATCH, .DELETE, .HEAD, .OPTIONS: method.rawValue
        default: "other"
        }
    }
}
