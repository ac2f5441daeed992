package import BrokerPOSIX
import FoundationEssentials

/// The installed service unit, read from its file and drop-ins as systemd would find them: the
/// user it runs as (`User=`, `Group=`, `SupplementaryGroups=`) and the credentials it loads
/// (`LoadCredential=ID:PATH`). `check-config` run by hand is neither that user nor given
/// `$CREDENTIALS_DIRECTORY`; with these it checks the very files the service will get, as the
/// user who will read them.
package struct ServiceUnit: Sendable, Equatable {
    /// The unit the package installs.
    package static let name = "maskinporten-broker.service"
    /// Where systemd looks for system units, most important first.
    package static let searchPath = [
        "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
    ]

    /// `User=`, nil when unset (root).
    package var user: String?
    /// `Group=`, nil when unset (the user's own).
    package var group: String?
    /// `SupplementaryGroups=`.
    package var supplementaryGroups: [String] = []
    /// Credential ID to file.
    package var credentials: [String: String] = [:]
    /// `PrivateDevices=`: a /dev of the service's own, with no hardware in it.
    package var privateDevices = false
    /// `DevicePolicy=`: `auto` (every device open to the service unless DeviceAllow= names
    /// some), `closed` or `strict`.
    package var devicePolicy = "auto"
    /// The devices `DeviceAllow=` names (the paths; the access after each is not kept).
    package var deviceAllow: [String] = []

    /// A unit's settings, as `load` reads them.
    package init(user: String? = nil, group: String? = nil, supplementaryGroups: [String] = [], credentials: [String: String] = [:]) {
        self.user = user
        self.group = group
        self.supplementaryGroups = supplementaryGroups
        self.credentials = credentials
    }

    /// The unit `name` from the first file found on `searchPath` and every drop-in, in
    /// systemd's order (drop-ins by name; an empty `LoadCredential=` or `SupplementaryGroups=`
    /// clears the list). Nil when the unit is not installed.
    package static func load(name: String = name, searchPath: [String] = searchPath) -> ServiceUnit? {
        guard let main = searchPath.map({ "\($0)/\(name)" }).first(where: { FileManager.default.fileExists(atPath: $0) }) else { return nil }
        var dropIns: [String: String] = [:]
        for directory in searchPath.reversed() {
            let folder = "\(directory)/\(name).d"
            for file in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where file.hasSuffix(".conf") {
                dropIns[file] = "\(folder)/\(file)"  // a drop-in of the same name higher up wins
            }
        }
        var unit = ServiceUnit(user: nil)
        for file in [main] + dropIns.keys.sorted().map({ dropIns[$0]! }) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            var section = ""
            for rawLine in text.split(separator: "\n") {
                let line = rawLine.trimmed()
                if line.hasPrefix("[") {
                    section = line
                    continue
                }
                guard section == "[Service]", let equals = line.firstIndex(of: "=") else { continue }
                let key = line[..<equals].trimmed()
                let value = line[line.index(after: equals)...].trimmed()
                switch key {
                case "User": unit.user = value.isEmpty ? nil : value
                case "Group": unit.group = value.isEmpty ? nil : value
                case "SupplementaryGroups":
                    if value.isEmpty { unit.supplementaryGroups = [] } else { unit.supplementaryGroups += value.split(separator: " ").map(String.init) }
                case "PrivateDevices": unit.privateDevices = ["yes", "true", "on", "1"].contains(value.lowercased())
                case "DevicePolicy": unit.devicePolicy = value.isEmpty ? "auto" : value
                case "DeviceAllow":
                    if value.isEmpty { unit.deviceAllow = [] } else { unit.deviceAllow.append(String(value.split(separator: " ")[0])) }
                case "LoadCredential":
                    if value.isEmpty {
                        unit.credentials = [:]
                    } else if let colon = value.firstIndex(of: ":") {
                        unit.credentials[String(value[..<colon])] = String(value[value.index(after: colon)...])
                    }
                default: continue
                }
            }
        }
        return unit
    }

    /// Why the service cannot open the device at `path` (a TPM's), or nil when the unit lets
    /// it: `PrivateDevices=yes` hides it, and a device policy other than `auto`, or any
    /// `DeviceAllow=`, keeps out what is not named.
    package func deviceDenial(_ path: String) -> String? {
        if privateDevices { return "the unit has PrivateDevices=yes, which gives the service a /dev with no \(path) in it" }
        if (devicePolicy != "auto" || !deviceAllow.isEmpty) && !deviceAllow.contains(path) {
            return "the unit's DevicePolicy=\(devicePolicy) lets the service open no \(path) (DeviceAllow= does not name it)"
        }
        return nil
    }

    /// The user the service runs as, when it is another than this process's: whose access to
    /// the files the service reads `check-config` checks. Nil when this process is that user
    /// (its own reads tell), when the unit runs as root, or when the host lacks the user.
    package var otherReader: FileReader? {
        guard let user, user != "root",
            let reader = FileReader.account(user, group: group, supplementaryGroups: supplementaryGroups),
            reader.uid != FileReader.current.uid
        else { return nil }
        return reader
    }
}
