package import BrokerCrypto
import BrokerPOSIX
import FoundationEssentials
import NIOCore
import NIOHTTP1

/// Digdir's self-service API for a client's keys: `GET {api}/{client_id}/jwks` answers the
/// registered set, `POST` replaces it whole. Refusals are classified as token fetches' are
/// (4xx rejected, 5xx and timeouts unavailable), with the API's own words kept.
extension UpstreamClient {
    /// The public keys registered on `clientID`.
    package func registeredKeys(api: String, clientID: String, token: String) async throws(TokenError) -> [JWK] {
        let (status, headers, body) = try await send(
            .GET, Self.jwksURL(api: api, clientID: clientID), headers: ["Authorization": "Bearer " + token, "Accept": "application/json"],
            endpoint: .selfService)
        return try Self.counted(.selfService, Self.keySet(status: status, headers: headers, body: body)).get()
    }

    /// Replaces the keys registered on `clientID` with `keys` (public parts, `use: sig`).
    package func registerKeys(_ keys: [JWK], api: String, clientID: String, token: String) async throws(TokenError) {
        let body: [UInt8]
        do { body = try JWKSet(keys: keys).json() } catch { throw TokenError(.malformed, endpoint: .selfService, "the key set could not be written: \(error)") }
        let (status, headers, answer) = try await send(
            .POST, Self.jwksURL(api: api, clientID: clientID),
            headers: ["Authorization": "Bearer " + token, "Content-Type": "application/json", "Accept": "application/json"],
            body: ByteBuffer(bytes: body), endpoint: .selfService)
        let result: Result<Void, TokenError> =
            (200..<300).contains(status)
            ? .success(()) : .failure(UpstreamAnswers.failure(.selfService, status: status, headers: headers, body: answer, now: Date()))
        try Self.counted(.selfService, result).get()
    }

    static func jwksURL(api: String, clientID: String) -> String {
        let escaped = PercentEncoding.encode(clientID)
        return "\(api)/\(escaped)/jwks"
    }

    /// `{"keys": [...]}` (or a bare array) from a 200.
    static func keySet(status: Int, headers: [(String, String)], body: [UInt8]) -> Result<[JWK], TokenError> {
        guard status == 200 else { return .failure(UpstreamAnswers.failure(.selfService, status: status, headers: headers, body: body, now: Date())) }
        if let set = try? JSONDecoder().decode(JWKSet.self, from: Data(body)) { return .success(set.keys) }
        if let keys = try? JSONDecoder().decode([JWK].self, from: Data(body)) { return .success(keys) }
        return .failure(TokenError(.malformed, endpoint: .selfService, "the self-service API answered 200 with something that is not a key set"))
    }
}
