package import BrokerCrypto
import BrokerPOSIX
import FoundationEssentials
import Logging
import NIOConcurrencyHelpers
import NIOHTTP1

/// Digdir's self-service API for a client's keys, as the emulator plays it:
/// `GET {api}/{client_id}/jwks` (scope `idporten:dcr.read`), `POST` (scope `idporten:dcr.write`)
/// replacing the whole set, at most 5 keys each with `use: sig`, and `DELETE` removing them all.
/// The bearer is a Maskinporten token this emulator issued. A registered key takes effect for
/// grants after `key_registration_delay` seconds (0 by default).
extension EmulatorServer {
    /// The API's path prefix: `self_service_api` is `{emulator}/api/v1/clients`.
    static let selfServicePrefix = "/api/v1/clients/"

    func selfServiceEndpoint(_ request: EmulatorRequest) -> EmulatorReply {
        faulted(.jwks) { selfServiceAnswer(request) }
    }

    private func selfServiceAnswer(_ request: EmulatorRequest) -> EmulatorReply {
        let rest = request.path.dropFirst(Self.selfServicePrefix.count).split(separator: "/", omittingEmptySubsequences: false)
        guard rest.count == 2, rest[1] == "jwks", !rest[0].isEmpty else {
            return .json(.notFound, ["error": "not_found", "error_description": .string("no route \(request.method) \(request.path)")])
        }
        let clientID = String(rest[0])
        let needed = request.method == .GET ? "idporten:dcr.read" : "idporten:dcr.write"
        let authorization = request.head.headers.first(name: "Authorization")
        let bearer = authorization.flatMap { $0.lowercased().hasPrefix("bearer ") ? String($0.dropFirst(7)).trimmed() : nil }
        let claims: [String: JSONValue]
        switch emulator.verifiedClaims(bearer, issuer: emulator.issuer, issuerName: "this Maskinporten", tokenName: "the Maskinporten token", now: emulator.now)
        {
        case .success(let verified): claims = verified
        case .failure(let refusal): return .json(.unauthorized, ["error": "invalid_token", "error_description": .string(refusal.detail)])
        }
        guard (claims["scope"]?.string ?? "").split(separator: " ").contains(Substring(needed)) else {
            return .json(.forbidden, ["error": "insufficient_scope", "error_description": .string("the token lacks the scope \(needed)")])
        }
        guard emulator.clients.contains(where: { $0.clientID == clientID }) else {
            return .json(.notFound, ["error": "not_found", "error_description": .string("no client \(clientID)")])
        }
        switch request.method {
        case .GET:
            return .encodable(.ok, JWKSet(keys: emulator.registeredKeys(of: clientID)))
        case .POST:
            guard let set = request.decode(JWKSet.self) else {
                return .json(.badRequest, ["error": "invalid_request", "error_description": "expected {\"keys\": [JWK...]}"])
            }
            if let problem = Self.problem(with: set.keys) {
                return .json(.badRequest, ["error": "invalid_request", "error_description": .string(problem)])
            }
            emulator.replaceKeys(of: clientID, with: set.keys)
            return .encodable(.created, set)
        case .DELETE:
            emulator.replaceKeys(of: clientID, with: [])
            return EmulatorReply(status: .noContent)
        default:
            return .json(.methodNotAllowed, ["error": "invalid_request", "error_description": "GET, POST or DELETE"])
        }
    }

    /// What is wrong with a key set sent to register, as Digdir's API refuses it; nil if nothing.
    static func problem(with keys: [JWK]) -> String? {
        if keys.count > 5 { return "too many keys: \(keys.count) (a client may have at most 5)" }
        var kids: Set<String> = []
        for (index, key) in keys.enumerated() {
            guard let kid = key.kid, !kid.isEmpty else { return "key \(index + 1) has no kid" }
            guard kids.insert(kid).inserted else { return "kid \(kid) appears twice" }
            guard key.use == "sig" else { return "key \(kid): use is required and must be sig" }
            guard key.kty == "RSA", key.n != nil, key.e != nil else { return "key \(kid) is not an RSA public key" }
            guard [key.d, key.p, key.q, key.dp, key.dq, key.qi].allSatisfy({ $0 == nil }) else { return "key \(kid) holds private key material" }
        }
        return nil
    }
}

extension Emulator {
    /// The keys registered on `clientID`.
    package func registeredKeys(of clientID: String) -> [JWK] {
        state.withLockedValue { $0.clients[clientID]?.keys ?? [] }
    }

    /// Replaces `clientID`'s keys; keys new to it take effect after `key_registration_delay`.
    package func replaceKeys(of clientID: String, with keys: [JWK]) {
        let now = self.now
        let clients = state.withLockedValue { state -> [RegisteredClient] in
            guard var client = state.clients[clientID] else { return Array(state.clients.values) }
            let known = Set(client.keys.compactMap(\.kid))
            let activeAt = now.addingTimeInterval(TimeInterval(state.settings.keyRegistrationDelay))
            for kid in keys.compactMap(\.kid) where !known.contains(kid) { state.keyActivation["\(clientID)|\(kid)"] = activeAt }
            client.keys = keys
            state.clients[clientID] = client
            state.stats.jwksRegistrations += 1
            return Array(state.clients.values)
        }
        persist(clients)
        logger.info("self-service: key set replaced", metadata: ["client_id": "\(clientID)", "kids": "\(keys.compactMap(\.kid))"])
    }
}
