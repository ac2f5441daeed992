package import BrokerCrypto
import BrokerPOSIX
package import FoundationEssentials
package import Logging
import NIOConcurrencyHelpers

/// A local Maskinporten and Altinn token exchange: registers clients, checks grants by every
/// rule of Maskinporten's JWT grant, issues signed tokens, exchanges them for Altinn tokens, and
/// lets tests inject faults and count calls.
///
/// `Emulator` holds the behaviour; `EmulatorServer` puts it on HTTP.
package final class Emulator: Sendable {
    /// Maskinporten's issuer: the `aud` grants must carry (`http://127.0.0.1:PORT/`).
    package let issuer: String
    /// Where grants are sent.
    package var tokenEndpoint: String { issuer + "token" }
    /// The Altinn platform base URL (the same server).
    package var altinnPlatform: String { String(issuer.dropLast()) }

    let signingKey: RSAPrivateKey
    /// Its public half, for checking the tokens brought back to the exchanges.
    let verifyingKey: RSAPublicKey
    let signingKeyID: String
    let stateDirectory: URL?
    let logger: Logger
    let state: NIOLockedValueBox<State>
    /// The Notifications API's orders, revocations and counters.
    let notificationsState = NIOLockedValueBox(NotificationsState())
    /// The serial numbers of the connections open now (`openConnections`).
    private let connections = NIOLockedValueBox([Int]())

    struct State {
        var clients: [String: RegisteredClient] = [:]
        var usedJTIs: [String: Int] = [:]
        var faults: [FaultTarget: Fault] = [:]
        var settings = EmulatorSettings()
        var stats = EmulatorStats()
        /// When a key registered through the self-service API starts being accepted, by
        /// `client_id|kid`; keys not here are accepted at once.
        var keyActivation: [String: Date] = [:]
    }

    /// An emulator answering as `issuer`. With a state directory, the signing key and the
    /// registered clients are kept there across restarts. `signingKey` is a key made
    /// beforehand, for tests that start many emulators (making one is the costly part).
    package init(
        issuer: String, stateDirectory: URL? = nil, signingKey: RSAPrivateKey? = nil, logger: Logger = Logger(label: "maskinporten-emulator")
    ) throws {
        self.issuer = issuer.hasSuffix("/") ? issuer : issuer + "/"
        self.stateDirectory = stateDirectory
        self.logger = logger
        var initial = State()
        if let stateDirectory {
            try FileManager.default.createDirectory(at: stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            self.signingKey = try signingKey ?? Self.loadOrCreateKey(at: stateDirectory.appendingPathComponent("signing-key.pem"))
            let clientsFile = stateDirectory.appendingPathComponent("clients.json")
            if let data = try? Data(contentsOf: clientsFile) {
                for client in try JSONDecoder().decode([RegisteredClient].self, from: data) {
                    initial.clients[client.clientID] = client
                }
            }
        } else {
            self.signingKey = try signingKey ?? RSAPrivateKey.generate()
        }
        verifyingKey = try self.signingKey.publicKey
        signingKeyID = "emulator-" + Digest.fingerprint(verifyingKey.jwk().n ?? "")
        state = NIOLockedValueBox(initial)
    }

    /// The emulator's clock: the wall clock moved by `clock_offset`.
    package var now: Date { Date().addingTimeInterval(TimeInterval(settings.clockOffset)) }

    // MARK: - Control

    /// Registers (or replaces) a client.
    package func register(_ client: RegisteredClient) {
        let clients = state.withLockedValue { state in
            state.clients[client.clientID] = client
            return Array(state.clients.values)
        }
        persist(clients)
        logger.info(
            "registered client",
            metadata: ["client_id": "\(client.clientID)", "kids": "\(client.keys.compactMap(\.kid))", "certificates": "\(client.certificates.count)"])
    }

    /// The registered clients.
    package var clients: [RegisteredClient] {
        state.withLockedValue { Array($0.clients.values) }
    }

    /// Injects `fault` into `target`'s answers (replacing any earlier one).
    package func inject(_ fault: Fault, into target: FaultTarget) {
        state.withLockedValue { $0.faults[target] = fault }
    }

    /// Removes every fault.
    package func clearFaults() {
        state.withLockedValue { $0.faults = [:] }
    }

    /// What the emulator issues.
    package var settings: EmulatorSettings {
        get { state.withLockedValue { $0.settings } }
        set { state.withLockedValue { $0.settings = newValue } }
    }

    /// Request counters since start or the last reset.
    package var stats: EmulatorStats {
        state.withLockedValue { $0.stats }
    }

    /// The serial numbers of the connections open now, of any client, oldest first: a test sees
    /// which of a client's kept connections it closed (`GET /_emulator/connections`).
    package var openConnections: [Int] {
        connections.withLockedValue { $0 }
    }

    /// Counts a connection open (`true`) or closed.
    func connection(_ serial: Int, open: Bool) {
        connections.withLockedValue { list in
            if open { list.append(serial) } else { list.removeAll { $0 == serial } }
        }
    }

    /// Zeroes the counters.
    package func resetStats() {
        state.withLockedValue { $0.stats = EmulatorStats() }
    }

    /// The emulator's public signing key, as a JWK Set (for verifying its tokens).
    package var jwks: [JWK] {
        [verifyingKey.jwk(kid: signingKeyID, algorithm: .rs256)]
    }

    // MARK: - Faults

    /// The fault for `target`, counting it down; nil when none applies.
    func takeFault(_ target: FaultTarget) -> Fault? {
        state.withLockedValue { state in
            guard var fault = state.faults[target] else { return nil }
            if let count = fault.count {
                if count <= 1 {
                    state.faults[target] = nil
                } else {
                    fault.count = count - 1
                    state.faults[target] = fault
                }
            }
            state.stats.faultsInjected += 1
            return fault
        }
    }

    func count(_ update: (inout EmulatorStats) -> Void) {
        state.withLockedValue { update(&$0.stats) }
    }

    // MARK: - Token endpoint

    /// The answer to a grant: an access token, or the rule the grant broke.
    func issueToken(assertion: String, now: Date? = nil) -> Result<[String: JSONValue], GrantRefusal> {
        let now = now ?? self.now
        let (clients, settings) = state.withLockedValue { state in
            // A key registered a moment ago is not known to the token endpoint yet.
            var clients = state.clients
            for (id, client) in clients {
                clients[id]?.keys = client.keys.filter { key in state.keyActivation["\(id)|\(key.kid ?? "")"].map { $0 <= now } ?? true }
            }
            return (clients, state.settings)
        }
        let validator = GrantValidator(issuer: issuer, clients: clients, now: now)
        let grant: ValidatedGrant
        switch validator.validate(assertion) {
        case .failure(let violation): return .failure(violation)
        case .success(let validated): grant = validated
        }
        if let org = grant.systemUserOrgs.first(where: settings.refusedOrganisations.contains) {
            return .failure(GrantRefusal(.noSystemUser, "organisation \(org)"))
        }
        if let org = grant.consumerOrg, settings.refusedOrganisations.contains(org) {
            return .failure(GrantRefusal(.noDelegation, "organisation \(org)"))
        }
        // jti: checked and recorded in one step, so two copies of a grant racing each other
        // cannot both pass.
        if let jti = grant.jti {
            let reused = state.withLockedValue { state -> Bool in
                let clock = Int(now.timeIntervalSince1970)
                state.usedJTIs = state.usedJTIs.filter { $0.value + 20 >= clock }
                let key = "\(grant.clientID)|\(jti)"
                if state.usedJTIs[key] != nil { return true }
                state.usedJTIs[key] = grant.expiresAt
                return false
            }
            if reused { return .failure(GrantRefusal(.reusedJTI)) }
        }
        let issuedAt = Int(now.timeIntervalSince1970)
        var claims: [String: JSONValue] = [
            "iss": .string(issuer), "client_id": .string(grant.clientID), "scope": .string(grant.scopes.joined(separator: " ")),
            "token_type": .string("Bearer"), "iat": .number(Double(issuedAt)), "exp": .number(Double(issuedAt + settings.tokenLifetime)),
            "jti": .string(UUID().uuidString.lowercased()), "client_amr": .string("private_key_jwt"),
        ]
        if let org = grant.consumerOrg {
            claims["consumer"] = .object(["authority": .string("iso6523-actorid-upis"), "ID": .string("0192:\(org)")])
        }
        if let resource = grant.resource { claims["aud"] = .array(resource.map(JSONValue.string)) }
        // As Maskinporten does, the system user's authorization comes back in the token.
        if let details = grant.authorizationDetails { claims["authorization_details"] = details }
        guard let token = try? sign(claims) else { return .failure(GrantRefusal(.badSignature, "the emulator could not sign")) }
        if let kid = grant.kid { count { $0.tokensIssuedByKid[kid, default: 0] += 1 } }
        for org in grant.systemUserOrgs + (grant.consumerOrg.map { [$0] } ?? []) { count { $0.tokensIssuedByOrganisation[org, default: 0] += 1 } }
        return .success([
            "access_token": .string(token), "token_type": .string("Bearer"),
            "expires_in": .number(Double(settings.tokenLifetime)), "scope": .string(grant.scopes.joined(separator: " ")),
        ])
    }

    // MARK: - Altinn exchange

    /// Why an exchange was refused.
    struct ExchangeRefusal: Error {
        var status: Int
        var title: String
        var detail: String
    }

    /// An Altinn token for a Maskinporten token the emulator issued.
    func exchange(bearer: String?, test: Bool, now: Date? = nil) -> Result<String, ExchangeRefusal> {
        let now = now ?? self.now
        let claims: [String: JSONValue]
        switch verifiedClaims(bearer, issuer: issuer, issuerName: "this Maskinporten", tokenName: "the Maskinporten token", now: now) {
        case .success(let verified): claims = verified
        case .failure(let refusal): return .failure(refusal)
        }
        let settings = self.settings
        let issuedAt = Int(now.timeIntervalSince1970)
        var altinn: [String: JSONValue] = [
            "iss": .string(altinnPlatform + "/authentication/api/v1/openid/"),
            "urn:altinn:org": .string(test ? "ttd" : "emulator"),
            "urn:altinn:orgNumber": .string(claims["consumer"]?.object?["ID"]?.string.map { String($0.dropFirst(5)) } ?? "991825827"),
            "urn:altinn:authenticatemethod": .string("maskinporten"),
            "urn:altinn:authlevel": .number(3),
            "client_id": claims["client_id"] ?? .null,
            "scope": claims["scope"] ?? .null,
            "token_type": .string("Bearer"),
            "iat": .number(Double(issuedAt)), "nbf": .number(Double(issuedAt)),
            "exp": .number(Double(issuedAt + settings.altinnTokenLifetime + settings.altinnExpOffset)),
            "jti": .string(UUID().uuidString.lowercased()),
        ]
        if test { altinn["urn:altinn:testorg"] = .bool(true) }
        guard let token = try? sign(altinn) else {
            return .failure(ExchangeRefusal(status: 500, title: "Internal Server Error", detail: "the emulator could not sign"))
        }
        if let jti = altinn["jti"]?.string { issuedAltinnToken(jti: jti) }
        return .success(token)
    }

    // MARK: - ID-porten

    /// ID-porten's issuer as the emulator plays it.
    package var idPortenIssuer: String { issuer + "idporten" }

    /// A person's ID-porten-like access token, signed by the emulator, for tests.
    package func mintIDPortenToken(pid: String, lifetime: Int = 600, now: Date = Date()) throws -> String {
        let issuedAt = Int(now.timeIntervalSince1970)
        return try sign([
            "iss": .string(idPortenIssuer), "pid": .string(pid), "acr": "idporten-loa-high", "amr": .array(["TestID"]),
            "client_id": "emulator-portal", "scope": "openid altinn:portal/enduser", "token_type": "Bearer",
            "iat": .number(Double(issuedAt)), "exp": .number(Double(issuedAt + lifetime)), "jti": .string(UUID().uuidString.lowercased()),
        ])
    }

    /// An Altinn token for a person's ID-porten token the emulator minted.
    func exchangeIDPorten(bearer: String?, now: Date? = nil) -> Result<String, ExchangeRefusal> {
        let now = now ?? self.now
        let claims: [String: JSONValue]
        switch verifiedClaims(bearer, issuer: idPortenIssuer, issuerName: "ID-porten", tokenName: "the ID-porten token", now: now) {
        case .success(let verified): claims = verified
        case .failure(let refusal): return .failure(refusal)
        }
        guard let pid = claims["pid"]?.string else {
            return .failure(ExchangeRefusal(status: 400, title: "Bad Request", detail: "the ID-porten token has no pid"))
        }
        let settings = self.settings
        let issuedAt = Int(now.timeIntervalSince1970)
        let userID = Int(Digest.sha256(pid.utf8).prefix(3).reduce(0) { $0 << 8 | Int($1) }) + 20_000_000
        let altinn: [String: JSONValue] = [
            "iss": .string(altinnPlatform + "/authentication/api/v1/openid/"),
            "urn:altinn:userid": .string(String(userID)), "urn:altinn:partyid": .string(String(userID + 30_000_000)),
            "pid": .string(pid), "urn:altinn:authlevel": .number(3), "urn:altinn:authenticatemethod": "idporten",
            "client_id": claims["client_id"] ?? .null, "scope": claims["scope"] ?? .null, "token_type": "Bearer",
            "iat": .number(Double(issuedAt)), "nbf": .number(Double(issuedAt)),
            "exp": .number(Double(issuedAt + settings.altinnTokenLifetime + settings.altinnExpOffset)),
            "jti": .string(UUID().uuidString.lowercased()),
        ]
        guard let token = try? sign(altinn) else {
            return .failure(ExchangeRefusal(status: 500, title: "Internal Server Error", detail: "the emulator could not sign"))
        }
        return .success(token)
    }

    // MARK: - Helpers

    /// The claims of a bearer token this emulator signed as `issuer`, not yet expired; else
    /// Altinn's 401.
    func verifiedClaims(_ bearer: String?, issuer expected: String, issuerName: String, tokenName: String, now: Date) -> Result<
        [String: JSONValue], ExchangeRefusal
    > {
        guard let bearer else {
            return .failure(ExchangeRefusal(status: 401, title: "Unauthorized", detail: "no Bearer token in the Authorization header"))
        }
        guard let parts = try? JWS.split(bearer),
            verifyingKey.verify(parts.signature, for: parts.signingInput, algorithm: .rs256),
            let claims = (try? JSONDecoder().decode(JSONValue.self, from: Data(parts.payload)))?.object,
            claims["iss"]?.string == expected
        else {
            return .failure(ExchangeRefusal(status: 401, title: "Unauthorized", detail: "the token was not issued by \(issuerName)"))
        }
        guard let exp = claims["exp"]?.number, exp > now.timeIntervalSince1970 else {
            return .failure(ExchangeRefusal(status: 401, title: "Unauthorized", detail: "\(tokenName) has expired"))
        }
        return .success(claims)
    }

    private func sign(_ claims: [String: JSONValue]) throws -> String {
        try JWS.sign(header: ["alg": "RS256", "kid": signingKeyID, "typ": "JWT"], payload: claims, key: signingKey, algorithm: .rs256)
    }

    func persist(_ clients: [RegisteredClient]) {
        guard let stateDirectory else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        do {
            let data = try encoder.encode(clients.sorted { $0.clientID < $1.clientID })
            try AtomicFile.write(Array(data), to: stateDirectory.appendingPathComponent("clients.json").path, replacing: true)
        } catch {
            logger.error("could not save clients", metadata: ["error": "\(error)"])
        }
    }

    private static func loadOrCreateKey(at url: URL) throws -> RSAPrivateKey {
        if var pem = try? Array(Data(contentsOf: url)) {
            defer { pem.resetSecretBytes() }
            return try RSAPrivateKey(pem: pem)
        }
        let key = try RSAPrivateKey.generate()
        var pem = try key.pkcs8PEM()
        defer { pem.resetSecretBytes() }
        let created = FileManager.default.createFile(atPath: url.path, contents: Data(pem), attributes: [.posixPermissions: 0o600])
        if !created { throw SystemError("writing \(url.path)") }
        return key
    }
}
