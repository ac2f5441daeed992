import BrokerConfig
import BrokerTokens
package import BrokerUpstream
import NIOCore
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

/// What the gateway's checks decided.
enum GatewayDecision: Sendable {
    /// Refused, or failed, with the broker's own answer (audited where it should be).
    case answered(RouterAnswer)
    /// To be sent.
    case send(GatewayPlan)
}

/// A gateway request that passed every check: what goes upstream, and what its audit line and
/// metrics name. Filled in by `planForward` on the thread that reads the request, and only read
/// after (a class: the plan is handed on, not copied, on the fast path's every call).
final class GatewayPlan: @unchecked Sendable {
    /// The router's metrics and auditor (not the router: a copy of it was five references
    /// taken and let go per call).
    let metrics: ServerMetrics
    let auditor: Auditor
    let peer: PeerCredentials
    let profile: String
    let method: String
    /// The API path (judged, once it is), without the query.
    var path: Substring
    let started: ContinuousClock.Instant
    let bytesIn: Int
    /// The cache of the caller's variant of the profile's token, once the allow list passed.
    var cache: TokenCache?
    var variant: TokenVariant? { cache?.variant }
    var upstream: UpstreamClient? { cache?.upstream }
    /// The call, without its `Authorization`.
    var call: ForwardedRequest?
    /// The profile's token, when the cache holds one now.
    var heldToken: IssuedToken?
    /// The profile's Altinn platform (its base URL), and what follows it in the call's URL: the
    /// judged path and the caller's query.
    var platform = ""
    var target = ""
    /// The largest body the profile's gateway takes.
    var maxBodyBytes = 0

    init(
        metrics: ServerMetrics, auditor: Auditor, peer: PeerCredentials, profile: String, method: String, path: Substring, started: ContinuousClock.Instant,
        bytesIn: Int
    ) {
        self.metrics = metrics
        self.auditor = auditor
        self.peer = peer
        self.profile = profile
        self.method = method
        self.path = path
        self.started = started
        self.bytesIn = bytesIn
    }

    /// The broker's own answer to the request, marked as the broker's, counted and (unless it
    /// was refused before a profile's gateway was known to be the caller's) audited.
    func own(_ response: BrokerResponse, audit: Bool = true) -> RouterAnswer {
        var response = response
        response.headers.replaceOrAdd(name: "Broker-Error", value: "true")
        metrics.request(route: Route.api.rawValue, status: response.status.code)
        if audit {
            record(status: Int(response.status.code), brokerAnswered: true, bytesOut: response.body.readableBytes, complete: true, replayed: false)
        }
        return .whole(response)
    }

    /// Altinn's answer has been written (or writing it stopped): its audit line and metrics.
    func finished(status: Int, bytesOut: Int, complete: Bool, replayed: Bool) {
        record(status: status, brokerAnswered: false, bytesOut: bytesOut, complete: complete, replayed: replayed)
    }

    /// The request's metrics (by Altinn's status class, or as the broker's own answer) and its
    /// audit line.
    private func record(status: Int, brokerAnswered: Bool, bytesOut: Int, complete: Bool, replayed: Bool) {
        metrics.gatewayRequest(profile: profile, method: method, status: brokerAnswered ? nil : status)
        auditor.forwarded(self, status: status, brokerAnswered: brokerAnswered, bytesOut: bytesOut, replayed: replayed, incomplete: !complete)
    }
}

extension Router {
    /// The body size a gateway request for `path` may have, when `path` is one and its profile
    /// has a gateway; nil: the socket's usual limit applies (and the router refuses the request).
    package func gatewayBodyLimit(path: String) -> Int? {
        let (route, name) = Route.match(path)
        guard route == .api else { return nil }
        return state().gateways[String(name)]?.settings.maxBodyBytes
    }

    /// `ANY /v1/api/{profile}/{path}`: checked (profile, gateway, allow list, delegation, path)
    /// before anything goes upstream, then sent to the profile's Altinn platform with its token;
    /// a 401 gets one new token and one replay.
    package func forward(_ request: BrokerRequest, peer: PeerCredentials) async -> RouterAnswer {
        switch planForward(request, peer: peer) {
        case .answered(let answer): return answer
        case .send(let plan): return await send(plan, token: plan.heldToken)
        }
    }

    /// A call the fast path sent, which Altinn answered 401 for `refused`: checked again, then
    /// sent once more with a new token (the call's one replay).
    func forward(_ request: BrokerRequest, peer: PeerCredentials, refused: IssuedToken) async -> RouterAnswer {
        switch planForward(request, peer: peer) {
        case .answered(let answer): return answer
        case .send(let plan): return await send(plan, token: refused, refused: true)
        }
    }

    /// The checks every gateway request passes before anything goes upstream, in one place for
    /// both paths: the refusal, or the call to make.
    func planForward(_ request: BrokerRequest, peer: PeerCredentials) -> GatewayDecision {
        let started = ContinuousClock.now
        let (_, name) = Route.match(request.path)
        let profileName = String(name)
        let method = Self.methodLabel(request.method)
        let apiPath = request.path[name.endIndex...]
        let plan = GatewayPlan(
            metrics: metrics, auditor: auditor, peer: peer, profile: profileName, method: method, path: apiPath, started: started,
            bytesIn: request.body.readableBytes)
        let state = state()
        guard let route = state.gateways[profileName] else {
            guard state.access[profileName] != nil else {
                return .answered(plan.own(.error(.notFound, "unknown_profile", "no profile named \"\(Self.printable(profileName))\""), audit: false))
            }
            return .answered(
                plan.own(
                    .error(
                        .notFound, "gateway_not_enabled",
                        "profile \"\(profileName)\" has no gateway: section, so the broker does not send Altinn API calls for it; add gateway: to the profile to enable /v1/api/\(profileName)/"
                    ),
                    audit: false))
        }
        // The allow list, the delegation headers and the cache, exactly as for the profile's token.
        let overflow: AuditSettings.Overflow
        switch tokenRequest(profile: profileName, choice: GatewayHeaders.delegationChoice(request.headers), peer: peer, state: state) {
        case .answer(let refusal):
            return .answered(plan.own(refusal, audit: false))
        case .ready(let ready, _, _, let auditOverflow):
            plan.cache = ready
            overflow = auditOverflow
        }
        let gateway = route.settings
        switch GatewayPath.judge(apiPath, prefixes: gateway.paths) {
        case .success(let judged): plan.path = judged
        case .failure(.malformed(let reason)): return .answered(plan.own(.error(.badRequest, "invalid_path", reason)))
        case .failure(.notAllowed(let prefixes)):
            return .answered(
                plan.own(
                    .error(
                        .forbidden, "path_not_allowed",
                        "profile \"\(profileName)\"'s gateway lets callers reach \(prefixes) only; add the API's prefix to gateway.paths to allow it")))
        }
        guard let platform = route.platform, plan.upstream != nil else {
            return .answered(plan.own(.error(.serviceUnavailable, "profile_unavailable", "profile \"\(profileName)\" has no Altinn platform to send to")))
        }
        plan.maxBodyBytes = gateway.maxBodyBytes
        if auditor.refuses(overflow) {
            return .answered(
                plan.own(
                    .error(
                        .serviceUnavailable, "audit_unavailable",
                        "the audit log is not being written (its destination does not take lines) and audit.on_overflow is refuse: no request is sent until it is",
                        retryAfter: .seconds(1)),
                    audit: false))
        }
        var headers = GatewayHeaders.outbound(request.headers)
        if let issuerName = gateway.platformAccessToken {
            guard let issuer = state.platformAccessTokens[issuerName], let platformToken = try? issuer.token() else {
                let reason = state.unavailablePlatformAccessTokens[issuerName] ?? "it could not be signed"
                return .answered(
                    plan.own(
                        .error(.serviceUnavailable, "profile_unavailable", "platform access token \"\(issuerName)\" for the gateway cannot be had: \(reason)")
                    ))
            }
            headers.add(name: "PlatformAccessToken", value: platformToken.value)
        }
        plan.platform = platform
        plan.target = request.rawQuery.map { plan.path + "?" + $0 } ?? String(plan.path)
        plan.call = ForwardedRequest(
            method: request.method, url: platform + plan.target, headers: headers, body: request.body,
            timeout: route.timeout)
        plan.heldToken = plan.cache?.heldToken()
        return .send(plan)
    }

    /// Sends a planned call with `token` (or the cache's, when nil), with one replay after a 401.
    func send(_ plan: GatewayPlan, token held: IssuedToken?, refused: Bool = false) async -> RouterAnswer {
        guard let cache = plan.cache, let upstream = plan.upstream, var call = plan.call else {
            return plan.own(.error(.internalServerError, "internal_error", "the gateway call was not planned"))
        }
        var token: IssuedToken
        if let held {
            token = held
        } else {
            do {
                token = try await cache.token()
            } catch {
                return plan.own(Self.response(for: error))
            }
        }
        // A 401 is the token's fault (revoked, or stale by Altinn's clock): one new token, shared
        // by every request refused the same token, and one replay. A 403 is a missing scope or
        // right, which a new token would not mend: it goes to the caller. A call the fast path
        // sent was refused already: its replay is the first call here.
        var replaying = refused
        var replayed = false
        var answer: ForwardedAnswer
        while true {
            if replaying {
                metrics.gatewayReplay(profile: plan.profile)
                replayed = true
                do {
                    token = try await cache.replacing(token)
                } catch {
                    return plan.own(Self.response(for: error))
                }
            }
            call.headers.replaceOrAdd(name: "Authorization", value: "Bearer " + token.value)
            let asked = ContinuousClock.now
            do {
                answer = try await upstream.forward(call)
            } catch {
                return plan.own(Self.response(for: error))
            }
            metrics.gatewayUpstream(profile: plan.profile, took: asked.duration(to: .now))
            guard answer.status == 401, !replayed else { break }
            await answer.body.discard()
            replaying = true
        }
        let status = answer.status
        metrics.request(route: Route.api.rawValue, status: UInt(status))
        return .streamed(
            StreamedAnswer(
                status: HTTPResponseStatus(statusCode: status), headers: GatewayHeaders.inbound(answer.headers), body: answer.body,
                finished: { [replayed] bytesOut, complete in plan.finished(status: status, bytesOut: bytesOut, complete: complete, replayed: replayed) }))
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
