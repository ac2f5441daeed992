import BrokerConfig
import BrokerCrypto
package import BrokerTokens
import BrokerUpstream
import FoundationEssentials
import Logging
import NIOCore
import NIOHTTP1

/// Maps requests to answers (docs/socket-api.md).
package struct Router: Sendable {
    let broker: TokenBroker
    let state: @Sendable () -> ServingState
    let metrics: ServerMetrics
    let auditor: Auditor
    let rotation: KeyRotation?

    /// A router over `broker`, reading the serving state through `state` on each request.
    package init(
        broker: TokenBroker, state: @escaping @Sendable () -> ServingState, metrics: ServerMetrics, auditor: Auditor, rotation: KeyRotation? = nil
    ) {
        self.rotation = rotation
        self.broker = broker
        self.state = state
        self.metrics = metrics
        self.auditor = auditor
    }

    /// The answer to `request` from `peer`: the broker's own, or (through the gateway) Altinn's.
    package func handle(_ request: BrokerRequest, peer: PeerCredentials) async -> RouterAnswer {
        if Route.match(request.path).route == .api { return await forward(request, peer: peer) }
        let (route, response) = await dispatch(request, peer: peer)
        metrics.request(route: route.rawValue, status: response.status.code)
        return .whole(response)
    }

    private func dispatch(_ request: BrokerRequest, peer: PeerCredentials) async -> (Route, BrokerResponse) {
        let (route, name) = Route.match(request.path)
        if route == .unknown { return (route, notFound(request)) }
        if let wrong = only(route.method, request) { return (route, wrong) }
        switch route {
        case .healthz: return (route, .text(.ok, "ok\n"))
        case .readyz: return (route, await readiness())
        case .metrics: return (route, .text(.ok, await metricsText(), contentType: "text/plain; version=0.0.4; charset=utf-8"))
        case .token: return (route, await token(profile: String(name), request, peer: peer, forced: false))
        case .refresh: return (route, await token(profile: String(name), request, peer: peer, forced: true))
        case .profiles: return (route, await profiles(peer: peer))
        case .platformAccessToken: return (route, platformAccessToken(name: String(name), peer: peer))
        case .idPortenExchange: return (route, await idPortenExchange(request, peer: peer))
        case .unknown, .api: return (route, notFound(request))
        }
    }

    // MARK: - Tokens

    /// What a token request needs before a token: the profile, the caller's right to it, and
    /// `min_valid`; or the answer that ends it there.
    enum TokenRequest {
        case answer(BrokerResponse)
        case ready(cache: TokenCache, minValid: Int?, profile: String, overflow: AuditSettings.Overflow)
    }

    /// `choice` is the delegation the caller names: the token route's query, or the gateway's
    /// `Broker-*` headers under the same names.
    func tokenRequest(
        profile name: String, choice: [String: String], minValid minValidText: String? = nil, peer: PeerCredentials, state: ServingState? = nil
    ) -> TokenRequest {
        let state = state ?? self.state()
        // `access` has an entry for each configured profile: one hash lookup, not a scan.
        guard let policy = state.access[name] else {
            return .answer(.error(.notFound, "unknown_profile", "no profile named \"\(Self.printable(name))\""))
        }
        guard permits(policy, peer, name) else {
            return .answer(.error(.forbidden, "access_denied", "this process (uid \(peer.uid)) may not use profile \"\(name)\""))
        }
        var variant = TokenVariant.base
        // Delegation chosen per request: checked against the profile's delegation: section,
        // looked up alone, without a copy of the whole profile.
        if !choice.isEmpty, TokenVariant.parameters.contains(where: { choice[$0] != nil }) {
            switch TokenVariant.choose(choice, profile: name, delegation: state.delegations[name]) {
            case .success(let chosen): variant = chosen
            case .failure(.invalid(let reason)): return .answer(.error(.badRequest, "invalid_request", Self.printable(reason, limit: 300)))
            case .failure(.denied(let reason)): return .answer(.error(.forbidden, "access_denied", Self.printable(reason, limit: 300)))
            }
        }
        guard let cache = broker.cache(for: name, variant: variant) else {
            let reason = state.unavailable[name] ?? "the profile is not loaded"
            return .answer(.error(.serviceUnavailable, "profile_unavailable", "profile \"\(name)\" cannot be served: \(reason)"))
        }
        var minValid: Int?
        if let text = minValidText {
            guard let value = Int(text), (0...86_400).contains(value) else {
                return .answer(.error(.badRequest, "invalid_request", "min_valid must be a whole number of seconds between 0 and 86400"))
            }
            minValid = value
        }
        return .ready(cache: cache, minValid: minValid, profile: name, overflow: state.configuration.audit.onOverflow)
    }

    private func token(profile name: String, _ request: BrokerRequest, peer: PeerCredentials, forced: Bool) async -> BrokerResponse {
        switch tokenRequest(profile: name, choice: request.query, minValid: request.query["min_valid"], peer: peer) {
        case .answer(let response):
            return response
        case .ready(let cache, let minValid, let profile, let overflow):
            let token: IssuedToken
            do {
                token = forced ? try await cache.refreshNow() : try await cache.token(minValid: minValid)
            } catch {
                return Self.response(for: error)
            }
            return tokenAnswer(token, from: cache, profile: profile, request, peer: peer, overflow: overflow)
        }
    }

    /// The answer to a request served directly on the connection's event loop, when no waiting
    /// is needed: `GET /v1/token/{profile}` while the cache holds a token good for the request
    /// (and every answer that ends such a request before the token). Nil: `handle` answers it,
    /// as it answers every other route. The hot path: no task, no actor hop, the JSON made once per token.
    /// Called on NIO's event loops and on the fast path's threads (`FastServer`), which hand it
    /// only the `Accept` header: it must read no other.
    package func handleImmediately(_ request: BrokerRequest, peer: PeerCredentials) -> BrokerResponse? {
        guard request.method == .GET else { return nil }
        let (route, name) = Route.match(request.path)
        guard route == .token, !name.isEmpty else { return nil }
        let response: BrokerResponse
        switch tokenRequest(profile: String(name), choice: request.query, minValid: request.query["min_valid"], peer: peer) {
        case .answer(let answer):
            response = answer
        case .ready(let cache, let minValid, let profile, let overflow):
            guard let token = cache.heldToken(minValid: minValid) else { return nil }
            response = tokenAnswer(token, from: cache, profile: profile, request, peer: peer, overflow: overflow)
        }
        metrics.request(route: Route.token.rawValue, status: response.status.code)
        return response
    }

    /// A token handed out: audited, counted, and answered as JSON or bare text.
    private func tokenAnswer(
        _ token: IssuedToken, from cache: TokenCache, profile: String, _ request: BrokerRequest, peer: PeerCredentials,
        overflow: AuditSettings.Overflow
    ) -> BrokerResponse {
        let body = TokenBodies.body(for: token, from: cache)
        if let refused = audited(.token, name: profile, variant: cache.variant, token, expiresAt: body.expiresAt, peer: peer, overflow: overflow) {
            return refused
        }
        if request.wantsPlainText {
            return .text(.ok, token.value, noStore: true)
        }
        return BrokerResponse(status: .ok, headers: Self.tokenHeaders, body: body.render(expiresIn: max(0, Int(token.expiresAt.timeIntervalSinceNow))))
    }

    static let tokenHeaders: HTTPHeaders = ["Content-Type": "application/json", "Cache-Control": "no-store"]

    /// Every token handed out passes here: audited (nil), or refused because the audit trail
    /// cannot take its line and `audit.on_overflow` is refuse (the answer to send instead).
    private func audited(
        _ kind: Auditor.Kind, name: String, variant: TokenVariant? = nil, _ token: IssuedToken, expiresAt: String? = nil, peer: PeerCredentials,
        overflow: AuditSettings.Overflow
    ) -> BrokerResponse? {
        guard auditor.handOut(kind, name: name, variant: variant, token: token, expiresAt: expiresAt, peer: peer, overflow: overflow) else {
            return .error(
                .serviceUnavailable, "audit_unavailable",
                "the audit log is not being written (its destination does not take lines) and audit.on_overflow is refuse: no token is handed out until it is",
                retryAfter: .seconds(1)
            )
        }
        metrics.tokenHandedOut(profile: name)
        return nil
    }

    /// The allow list's verdict on `peer` for `name` (made only for a refusal, which is counted
    /// and audited).
    func permits(_ policy: AccessPolicy?, _ peer: PeerCredentials, _ name: @autoclosure () -> String) -> Bool {
        if policy?.permits(peer) == true { return true }
        let name = name()
        metrics.denied(profile: name)
        auditor.denied(name, peer: peer)
        return false
    }

    // MARK: - Platform Access Tokens and ID-porten

    private func platformAccessToken(name: String, peer: PeerCredentials) -> BrokerResponse {
        let state = state()
        guard state.configuration.platformAccessTokens.contains(where: { $0.name == name }) else {
            return .error(.notFound, "unknown_profile", "no platform access token named \"\(Self.printable(name))\"")
        }
        guard permits(state.platformAccessTokenAccess[name], peer, "platform_access_token:\(name)") else {
            return .error(.forbidden, "access_denied", "this process (uid \(peer.uid)) may not use platform access token \"\(name)\"")
        }
        guard let issuer = state.platformAccessTokens[name] else {
            return .error(
                .serviceUnavailable, "profile_unavailable",
                "platform access token \"\(name)\" cannot be served: \(state.unavailablePlatformAccessTokens[name] ?? "not loaded")")
        }
        let token: IssuedToken
        do {
            token = try issuer.token()
        } catch let error as TokenError {
            return .error(.serviceUnavailable, "profile_unavailable", error.reason)
        } catch {
            return .error(.internalServerError, "internal_error", "the platform access token could not be signed")
        }
        if let refused = audited(.platformAccessToken, name: "platform_access_token:\(name)", token, peer: peer, overflow: state.configuration.audit.onOverflow)
        {
            return refused
        }
        return .json(
            .ok,
            PlatformAccessTokenBody(
                accessToken: token.value, header: "PlatformAccessToken",
                expiresIn: max(0, Int(token.expiresAt.timeIntervalSinceNow)), expiresAt: JSONCoding.rfc3339(token.expiresAt)
            ), noStore: true)
    }

    private func idPortenExchange(_ request: BrokerRequest, peer: PeerCredentials) async -> BrokerResponse {
        let state = state()
        guard let exchanger = broker.idPorten else {
            return .error(.notFound, "unknown_profile", "the ID-porten exchange is not enabled (id_porten_exchange in the configuration)")
        }
        guard permits(state.idPortenAccess, peer, "id_porten_exchange") else {
            return .error(.forbidden, "access_denied", "this process (uid \(peer.uid)) may not use the ID-porten exchange")
        }
        let input = String(buffer: request.body)
        let token: IssuedToken
        do {
            token = try await exchanger.exchange(input)
        } catch {
            let upstream = error.upstream.map { UpstreamAnswerBody(status: $0.status, error: $0.error, errorDescription: $0.errorDescription) }
            switch error.kind {
            case .rejected:
                // The person's token was refused: the caller's input is at fault.
                let status: HTTPResponseStatus =
                    error.upstream.map { $0.status == 401 ? .unauthorized : ($0.status == 403 ? .forbidden : .badRequest) } ?? .badRequest
                return .error(status, "invalid_request", error.reason + (error.upstream?.errorDescription.map { ": \($0)" } ?? ""), upstream: upstream)
            default:
                return Self.response(for: error)
            }
        }
        if let refused = audited(.idPortenExchange, name: "id_porten_exchange", token, peer: peer, overflow: state.configuration.audit.onOverflow) {
            return refused
        }
        return .json(
            .ok,
            TokenBody(
                accessToken: token.value, tokenType: "Bearer", expiresIn: max(0, Int(token.expiresAt.timeIntervalSinceNow)),
                expiresAt: JSONCoding.rfc3339(token.expiresAt), scope: token.scope, profile: "id-porten", kind: "altinn"
            ), noStore: true)
    }

    /// The client's answer for a token failure.
    static func response(for error: TokenError) -> BrokerResponse {
        let upstream = error.upstream.map { UpstreamAnswerBody(status: $0.status, error: $0.error, errorDescription: $0.errorDescription) }
        switch error.kind {
        case .rejected:
            return .error(.badGateway, "upstream_rejected", error.reason, upstream: upstream)
        case .unavailable, .malformed:
            return .error(.serviceUnavailable, "upstream_unavailable", error.reason, upstream: upstream, retryAfter: error.retryAfter)
        case .rateLimited:
            return .error(.tooManyRequests, "refresh_rate_limited", error.reason, retryAfter: error.retryAfter)
        case .insufficientLifetime:
            return .error(.badRequest, "invalid_request", error.reason)
        }
    }

    // MARK: - Profiles, readiness, metrics

    /// What the broker holds now, gathered once for whichever rendering asks.
    package func snapshot() async -> BrokerSnapshot {
        await BrokerSnapshot.gather(state: state(), broker: broker, rotation: rotation)
    }

    private func profiles(peer: PeerCredentials) async -> BrokerResponse {
        let access = state().access
        let snapshot = await snapshot()
        let list = snapshot.profiles.filter { access[$0.profile.name]?.permits(peer) == true }.map { entry in
            ProfileBody(
                profile: entry.profile.name, environment: entry.profile.environment.name,
                kind: entry.profile.exchange == .altinn ? "altinn" : "maskinporten", scopes: entry.profile.scopes, state: entry.state,
                expiresAt: entry.status?.expiresAt.map(JSONCoding.rfc3339), lastError: entry.status?.lastError?.description ?? entry.unavailable,
                keys: entry.status.flatMap { $0.keys.isEmpty ? nil : $0.keys.map { KeyBody($0, now: snapshot.takenAt) } },
                rotation: entry.rotation.map(RotationBody.init), variants: entry.variants,
                origin: entry.status.flatMap { $0.expiresAt == nil ? nil : $0.restored ? "restored" : "upstream" })
        }
        return .json(.ok, ["profiles": list])
    }

    private func readiness() async -> BrokerResponse {
        let snapshot = await snapshot()
        var failing: [String: ReadinessProblem] = [:]
        var certificates: [String: Int] = [:]
        for entry in snapshot.profiles {
            let name = entry.profile.name
            guard let status = entry.status else {
                failing[name] = ReadinessProblem(state: "unavailable", error: entry.unavailable)
                continue
            }
            if let leaf = entry.certificate {
                certificates["profiles.\(name)"] = snapshot.daysLeft(leaf)
                if leaf.notAfter <= snapshot.takenAt {
                    failing[name] = ReadinessProblem(
                        state: "failing", error: "the business certificate \(leaf.subject) expired on \(JSONCoding.rfc3339(leaf.notAfter))")
                    continue
                }
            }
            if !status.servable {
                failing[name] = ReadinessProblem(state: status.state.rawValue, error: status.lastError?.description)
            }
        }
        for issuer in snapshot.platformAccessTokens {
            let key = "platform_access_tokens.\(issuer.name)"
            guard let certificate = issuer.certificate else {
                failing[key] = ReadinessProblem(state: "unavailable", error: issuer.unavailable)
                continue
            }
            certificates[key] = snapshot.daysLeft(certificate)
            if certificate.notAfter <= snapshot.takenAt {
                failing[key] = ReadinessProblem(
                    state: "failing", error: "the certificate \(certificate.subject) expired on \(JSONCoding.rfc3339(certificate.notAfter))")
            }
        }
        let body = ReadinessBody(
            status: failing.isEmpty ? "ready" : "not_ready", failing: failing.isEmpty ? nil : failing,
            certificateDaysLeft: certificates.isEmpty ? nil : certificates)
        return .json(failing.isEmpty ? .ok : .serviceUnavailable, body)
    }

    /// The Prometheus exposition of every metric, per-profile gauges brought up to date.
    package func metricsText() async -> String {
        metrics.render(await snapshot(), droppedLines: auditor.drops)
    }

    // MARK: - Helpers

    private func only(_ method: HTTPMethod, _ request: BrokerRequest) -> BrokerResponse? {
        guard request.method != method else { return nil }
        var response = BrokerResponse.error(.methodNotAllowed, "invalid_request", "\(request.path) takes \(method) only")
        response.headers.add(name: "Allow", value: "\(method)")
        return response
    }

    private func notFound(_ request: BrokerRequest) -> BrokerResponse {
        .error(.notFound, "not_found", "no such route: \(Self.printable(request.path))")
    }

    /// Caller-supplied text, made safe to echo: at most `limit` printable ASCII characters.
    static func printable(_ text: String, limit: Int = 64) -> String {
        let cleaned = String(text.unicodeScalars.prefix(limit).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? Character($0) : "?" })
        return text.unicodeScalars.count > limit ? cleaned + "…" : cleaned
    }
}
