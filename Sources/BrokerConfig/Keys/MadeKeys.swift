package import BrokerCrypto
package import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// The keys rotation made for a profile, where it keeps them in the state directory: an
/// EncodedJwk set (`<profile>.keys.jwk`, mode 0600), or, for a profile whose keys are in the
/// TPM, TPM-wrapped key files in `<profile>.tpm-keys/` (mode 0700), each beside a note of its
/// kid, public key and when it was made. Rotation writes them; the key loader reads them.
package struct MadeKeys: Sendable {
    /// One key rotation made, as rotation and the API see it: never its private part.
    package struct Made: Sendable {
        /// Its kid.
        package var kid: String
        /// Its public JWK, as the self-service API registers it.
        package var publicKey: JWK
        /// When it was made.
        package var madeAt: Date?
    }

    /// What a TPM key's note holds (`<n>.json` beside `<n>.tss2.pem`).
    private struct Note: Codable {
        var kid: String
        var madeAt: Int
        var publicKey: JWK

        enum CodingKeys: String, CodingKey {
            case kid
            case madeAt = "made_at"
            case publicKey = "public_key"
        }
    }

    private let settings: RotationSettings

    /// The keys rotation keeps for a profile with `settings`.
    package init(_ settings: RotationSettings) {
        self.settings = settings
    }

    /// Every key made and kept, oldest first.
    package func list() throws -> [Made] {
        if settings.tpm != nil {
            return try notes().map { note, _ in Made(kid: note.kid, publicKey: note.publicKey, madeAt: Date(timeIntervalSince1970: TimeInterval(note.madeAt))) }
        }
        guard FileManager.default.fileExists(atPath: settings.keysFile) else { return [] }
        return try EncodedJwkFile.readKeys(settings.keysFile).map { key in
            Made(kid: key.kid ?? "", publicKey: key.publicPart, madeAt: key.iat.map { Date(timeIntervalSince1970: TimeInterval($0)) })
        }
    }

    /// Makes a key of `bits` and keeps it after the others: in the TPM for a TPM profile (its
    /// wrapped file first, then its note: a file without a note is a make that did not finish,
    /// and is not a key), else in the EncodedJwk set.
    package func make(bits: Int, now: Date) throws -> Made {
        guard let tpm = settings.tpm else {
            let existing = FileManager.default.fileExists(atPath: settings.keysFile) ? try EncodedJwkFile.readKeys(settings.keysFile) : []
            let key = try EncodedJwkFile.makeKey(bits: bits, kid: nil, now: now)
            try EncodedJwkFile.write(existing + [key], asSet: true, to: settings.keysFile, replacing: true)
            return Made(kid: key.kid ?? "", publicKey: key.publicPart, madeAt: now)
        }
        try Self.makeDirectory(tpm.directory)
        let name = "\(Int(now.timeIntervalSince1970 * 1000))"
        let publicKey = try EncodedJwkFile.makeTPMKey(
            bits: min(bits, 3072), kid: nil, tcti: tpm.tcti, to: "\(tpm.directory)/\(name).tss2.pem", replacing: true, now: now)
        let note = Note(kid: publicKey.kid ?? "", madeAt: Int(now.timeIntervalSince1970), publicKey: publicKey)
        try EncodedJwkFile.writeAtomically(Array(try JSONEncoder().encode(note)) + [0x0A], to: "\(tpm.directory)/\(name).json", replacing: true)
        return Made(kid: note.kid, publicKey: publicKey, madeAt: now)
    }

    /// Lets the keys `kids` go: out of the set, or their wrapped files and notes removed.
    package func remove(_ kids: [String]) throws {
        guard settings.tpm != nil else {
            let kept = try EncodedJwkFile.readKeys(settings.keysFile).filter { !kids.contains($0.kid ?? "") }
            if kept.isEmpty {
                unlink(settings.keysFile)
            } else {
                try EncodedJwkFile.write(kept, asSet: true, to: settings.keysFile, replacing: true)
            }
            return
        }
        for (note, base) in try notes() where kids.contains(note.kid) {
            unlink(base + ".tss2.pem")
            unlink(base + ".json")
        }
    }

    /// For a TPM profile, each kept key's wrapped file, oldest first, with its kid and when it
    /// was made: what the key loader loads through the TPM.
    package func tpmKeyFiles() throws -> [(kid: String, path: String, madeAt: Date)] {
        try notes().map { note, base in (note.kid, base + ".tss2.pem", Date(timeIntervalSince1970: TimeInterval(note.madeAt))) }
    }

    /// The notes of the TPM keys kept, oldest first, with their files' common path.
    private func notes() throws -> [(Note, String)] {
        guard let directory = settings.tpm?.directory, FileManager.default.fileExists(atPath: directory) else { return [] }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }
        return try names.compactMap { name -> (Note, String)? in
            let base = "\(directory)/\(name.dropLast(".json".count))"
            guard FileManager.default.fileExists(atPath: base + ".tss2.pem") else { return nil }
            do {
                return (try JSONDecoder().decode(Note.self, from: Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(name)"))), base)
            } catch {
                throw EncodedJwkFile.Failure("\(directory)/\(name) is not a note of a key rotation made (\(error)); move it away with its .tss2.pem")
            }
        }.sorted { ($0.0.madeAt, $0.1) < ($1.0.madeAt, $1.1) }
    }

    /// The directory, made (0700) if it does not exist yet.
    private static func makeDirectory(_ directory: String) throws {
        guard mkdir(directory, 0o700) == 0 || errno == EEXIST else {
            throw EncodedJwkFile.Failure(
                "the directory \(directory) for the keys rotation makes in the TPM cannot be made: \(String(cString: strerror(errno)))")
        }
    }
}
