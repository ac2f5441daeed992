import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerCrypto
@testable import MaskinportenEmulator

@Suite("Emulator: the self-service API for keys", .sharedKeys)
struct SelfServiceAPITests {
    static func publicKey(_ kid: String, use: String? = "sig") throws -> JWK {
        var key = try Keys.stranger.publicKey.jwk(kid: kid)
        key.use = use
        return key
    }

    @Test("a key set is refused as Digdir's API refuses it: more than 5 keys, no use, a repeated kid, private members")
    func refusedSets() throws {
        #expect(EmulatorServer.problem(with: try (1...5).map { try Self.publicKey("k\($0)") }) == nil)
        #expect(
            EmulatorServer.problem(with: try (1...6).map { try Self.publicKey("k\($0)") })?.contains("too many keys: 6 (a client may have at most 5)") == true)
        #expect(EmulatorServer.problem(with: [try Self.publicKey("k1", use: nil)])?.contains("use is required and must be sig") == true)
        #expect(EmulatorServer.problem(with: [try Self.publicKey("k1"), try Self.publicKey("k1")])?.contains("appears twice") == true)
        var privateKey = try Keys.stranger.privateJWK(kid: "k1", algorithm: .rs256)
        privateKey.use = "sig"
        #expect(EmulatorServer.problem(with: [privateKey])?.contains("private key material") == true)
    }

    @Test("a registered key takes effect for grants after key_registration_delay, and the set is replaced whole")
    func registrationDelay() throws {
        let emulator = try makeEmulator()
        emulator.settings.keyRegistrationDelay = 30
        emulator.replaceKeys(of: "client-1", with: [try Keys.client.publicKey.jwk(kid: "kid-1"), try Self.publicKey("kid-2")])
        let forge = GrantForge(issuer: emulator.issuer, kid: "kid-2", key: Keys.stranger)
        guard case .failure(let refusal) = emulator.issueToken(assertion: try forge.grant()) else {
            Issue.record("a key registered a moment ago signed a grant that was accepted")
            return
        }
        #expect(refusal.violation == .unknownKid)
        let later = Date().addingTimeInterval(31)
        #expect(throws: Never.self) { try emulator.issueToken(assertion: try forge.sign(forge.claims(now: later)), now: later).get() }
        // kid-1 was there before: it stays usable at once.
        #expect(throws: Never.self) { try emulator.issueToken(assertion: try GrantForge(issuer: emulator.issuer).grant()).get() }
        #expect(emulator.registeredKeys(of: "client-1").compactMap(\.kid) == ["kid-1", "kid-2"])
        emulator.replaceKeys(of: "client-1", with: [])
        #expect(emulator.registeredKeys(of: "client-1").isEmpty)
        #expect(emulator.stats.jwksRegistrations == 2)
    }
}
