package import BrokerPOSIX
package import Logging

/// An `allow` list resolved against this host's users and groups.
package struct ResolvedAccess: Sendable, Equatable {
    /// User ids allowed, by `uids` and by `users` names.
    package var uids: Set<UInt32>
    /// Group ids allowed, by `groups` names.
    package var gids: Set<UInt32>
    /// Names in the list this host does not have (`user notifier`, `group mail`).
    package var unknownNames: [String]
}

extension AccessList {
    /// The list's names looked up on this host. A name the host lacks allows nobody; it is
    /// reported, not refused, as the user may be made after the broker is configured.
    package func resolved() -> ResolvedAccess {
        var uids = Set(self.uids)
        var gids: Set<UInt32> = []
        var unknown: [String] = []
        for name in users {
            if let uid = Accounts.uid(of: name) { uids.insert(uid) } else { unknown.append("user \(name)") }
        }
        for name in groups {
            if let gid = Accounts.gid(of: name) { gids.insert(gid) } else { unknown.append("group \(name)") }
        }
        return ResolvedAccess(uids: uids, gids: gids, unknownNames: unknown)
    }
}

/// What the configuration means on this host, beyond what the file and its keys say: checked by
/// `serve` (at start and every reload) and by `check-config` through these functions alone,
/// so that `check-config` passes exactly what `serve` would start with, in the same words.
extension LoadedConfiguration {
    /// What `serve` warns about and serves anyway: allow lists naming users or groups this host
    /// does not have, a client id still the example's placeholder, and settings that have no
    /// effect at `logLevel`.
    package func warnings(logLevel: Logger.Level) -> [ConfigError] {
        let file = configuration.file
        var lists: [(String, AccessList?)] = configuration.profiles.map { ("profiles.\($0.name).allow", $0.allow) }
        lists += configuration.platformAccessTokens.map { ("platform_access_tokens.\($0.name).allow", $0.allow) }
        if let exchange = configuration.idPortenExchange { lists.append(("id_porten_exchange.allow", exchange.allow)) }
        var warnings: [ConfigError] = []
        for (keyPath, list) in lists {
            guard let unknown = list?.resolved().unknownNames, !unknown.isEmpty else { continue }
            warnings.append(
                ConfigError(
                    .unknownAccount, file: file, keyPath: keyPath,
                    "allow list names that do not exist on this host are ignored: \(unknown.joined(separator: ", ")); create them (useradd, groupadd) or correct the names"
                ))
        }
        for profile in configuration.profiles where Self.placeholderClientIDs.contains(profile.clientID) {
            warnings.append(
                ConfigError(
                    .placeholder, file: file, keyPath: "profiles.\(profile.name).client_id",
                    "client_id is still the example's placeholder \(profile.clientID); set it to your integration's id from Samarbeidsportalen (\"integrasjonens identifikator\"), or Maskinporten answers invalid_client"
                ))
        }
        if configuration.audit.onOverflow == .refuse && logLevel > .info {
            warnings.append(
                ConfigError(
                    .ineffective, file: file, keyPath: "audit.on_overflow",
                    "audit.on_overflow is refuse, but the log level \(logLevel) turns audit lines off: tokens are handed out unaudited; use log level info or lower"
                ))
        }
        return warnings
    }

    /// The client ids the shipped examples carry, which no real integration has.
    static let placeholderClientIDs: Set<String> = ["2f3c9a1e-0000-4000-8000-000000000000", "00000000-0000-4000-8000-000000000000"]

    /// What keeps `serve` from making its socket at `socket.path`: checked when systemd does not
    /// pass the socket in (socket activation makes it instead, and `socket.path` is not used).
    package var socketProblems: [ConfigError] {
        let socket = configuration.socket
        var problems: [ConfigError] = []
        if let problem = UnixListener.problem(placing: socket.path) {
            problems.append(ConfigError(.socketPlace, file: configuration.file, keyPath: "socket.path", problem))
        }
        if let group = socket.group, Accounts.gid(of: group) == nil {
            problems.append(
                ConfigError(
                    .unknownAccount, file: configuration.file, keyPath: "socket.group",
                    "no group named \(group) on this host; create it (groupadd) or correct the name"))
        }
        return problems
    }
}

// MARK: - Files the service reads

extension LoadedConfiguration {
    /// The files `serve` reads that `reader`, the user the service runs as, cannot: what makes
    /// a `check-config` by root pass and the service then fail. Each names the file or the
    /// directory in the way, and the fix.
    package func accessProblems(for reader: FileReader, unit: ServiceUnit) -> [ConfigError] {
        configuration.filesRead.compactMap { file in
            guard let denial = reader.denial(reading: file.path) else { return nil }
            let who = "\(reader.name), the user \(ServiceUnit.name) runs as"
            return ConfigError(
                .serviceAccess, file: configuration.file, keyPath: file.keyPath,
                Self.unreadable(
                    file.path, by: who, denial: denial, group: unit.group ?? Accounts.primaryGroupName(of: reader.name) ?? reader.name,
                    asCredential: file.couldBeCredential))
        }
    }

    /// `PATH cannot be read by WHO: WHAT IS IN THE WAY; run: FIX`: the one wording for a file
    /// the service's user cannot read, from `check-config` and from `serve` itself.
    package static func unreadable(_ path: String, by who: String, denial: FileDenial, group: String, asCredential: Bool) -> String {
        let credential =
            asCredential
            ? "; or load it as the unit's credential (key: { encoded_jwk_credential: NAME } with LoadCredential=NAME:\(path) in the unit), as the example configuration does"
            : ""
        if denial.isDirectory {
            return
                "\(path) cannot be read by \(who): the directory \(denial) does not let it through; keep the file in a directory it may enter, such as /etc/maskinporten-broker\(credential)"
        }
        return "\(path) cannot be read by \(who): it is \(denial); run: chown root:\(group) \(path) && chmod 0640 \(path)\(credential)"
    }
}

// MARK: - The TPM the service opens

extension LoadedConfiguration {
    /// Where the TPM drop-in is, and how it is put in place: the fix for a service that cannot
    /// reach the TPM.
    package static let tpmDropIn =
        "install -D -m 0644 /usr/share/maskinporten-broker/tpm.conf /etc/systemd/system/maskinporten-broker.service.d/tpm.conf && systemctl daemon-reload"

    /// What keeps the service, as `unit` runs it, from the TPM its TPM keys name: a device the
    /// unit hides or does not allow, or a device or simulator socket the service's user
    /// (`reader`, when that is another user than this process's) may not open.
    package func tpmProblems(unit: ServiceUnit, reader: FileReader?) -> [ConfigError] {
        configuration.profiles.compactMap { profile in
            // The daemon talks to one TPM (check-config refuses two): the first key's.
            let tcti = profile.keySource.sources.lazy.compactMap(\.tpm).first
            guard let tcti, let (path, isDevice) = Self.tpmPath(tcti) else { return nil }
            let problem = { (message: String) in
                ConfigError(
                    .serviceAccess, file: configuration.file, keyPath: "profiles.\(profile.name).\(profile.keySource.configKey == "keys" ? "keys" : "key")",
                    message)
            }
            if isDevice, let denial = unit.deviceDenial(path) {
                return problem("\(denial); add the TPM drop-in: \(Self.tpmDropIn)")
            }
            guard let reader, let denial = reader.denial(opening: path, needs: isDevice ? 0o6 : 0o2) else { return nil }
            let who = "\(reader.name), the user \(ServiceUnit.name) runs as"
            let fix =
                denial.group == "tss"
                ? "add the TPM drop-in (SupplementaryGroups=tss): \(Self.tpmDropIn)"
                : "give the service the group in a drop-in: SupplementaryGroups=\(denial.group)"
            let what = denial.isDirectory ? "the directory \(denial) does not let it through" : "it is \(denial)"
            return problem("\(path) cannot be opened by \(who): \(what); \(fix)")
        }
    }

    /// The file a TCTI opens: a device (`device:/dev/tpmrm0`, the default) or swtpm's socket
    /// (`swtpm:path=...`). Nil for one over TCP or through a daemon, which no file permission
    /// guards.
    static func tpmPath(_ tcti: String?) -> (path: String, isDevice: Bool)? {
        guard let tcti else { return ("/dev/tpmrm0", true) }
        let parts = tcti.split(separator: ":", maxSplits: 1).map(String.init)
        let settings = parts.count > 1 ? parts[1] : ""
        switch parts[0] {
        case "device": return (settings.isEmpty ? "/dev/tpmrm0" : settings, true)
        case "swtpm":
            let path = settings.split(separator: ",").first { $0.hasPrefix("path=") }.map { String($0.dropFirst("path=".count)) }
            return path.map { ($0, false) }
        default: return nil
        }
    }
}
