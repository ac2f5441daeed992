import BrokerConfig
package import FoundationEssentials

/// How far rotation got for one profile, kept in `{state_directory}/{profile}.rotation.json`.
/// Each step is written here before the call it leads to, so that a crash or restart at any
/// step resumes from it: a key made but not registered is registered (once: the registered set
/// is read first), a key being retired is retired. It holds kids and times, never key material.
package struct RotationRecord: Codable, Sendable, Equatable {
    /// How far one key the broker made has got.
    package enum Phase: String, Codable, Sendable {
        /// Made and stored in the keys file; not registered yet.
        case made
        /// Being registered: the `POST` may or may not have reached the API.
        case registering
        /// Registered on the client; Maskinporten has not accepted a grant signed with it yet.
        case registered
        /// Maskinporten accepted a grant signed with it.
        case accepted
        /// Being removed from the client: the `POST` without it may or may not have reached the API.
        case retiring
    }

    /// One key the broker made.
    package struct MadeKey: Codable, Sendable, Equatable {
        /// Its kid.
        package var kid: String
        /// When it was made.
        package var madeAt: Date
        /// How far it has got.
        package var phase: Phase
        /// When Maskinporten first accepted a grant signed with it.
        package var acceptedAt: Date?

        enum CodingKeys: String, CodingKey {
            case kid, phase
            case madeAt = "made_at"
            case acceptedAt = "accepted_at"
        }
    }

    /// The client the keys were made for.
    package var clientID: String
    /// Keys the broker made, oldest first. Only these are ever removed from the client.
    package var made: [MadeKey] = []
    /// When a key without a recorded creation time was first seen: its age counts from then.
    package var firstSeen: [String: Date] = [:]
    /// When the last new key was accepted.
    package var lastRotation: Date?

    enum CodingKeys: String, CodingKey {
        case made
        case clientID = "client_id"
        case firstSeen = "first_seen"
        case lastRotation = "last_rotation"
    }

    /// A record for `clientID` with nothing done yet.
    package init(clientID: String) {
        self.clientID = clientID
    }

    /// The record in `path`, or a new one when there is none.
    package static func read(_ path: String, clientID: String) throws -> RotationRecord {
        guard let data = FileManager.default.contents(atPath: path) else { return RotationRecord(clientID: clientID) }
        do {
            return try decoder.decode(RotationRecord.self, from: data)
        } catch {
            throw EncodedJwkFile.Failure("\(path) is not a rotation record this broker wrote (\(error)); move it away to start over")
        }
    }

    /// Writes the record to `path` (mode 0600, atomically: a crash leaves the old or the new).
    package func write(to path: String) throws {
        try EncodedJwkFile.writeAtomically(Array(try Self.encoder.encode(self)) + [0x0A], to: path, replacing: true)
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    private static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}
