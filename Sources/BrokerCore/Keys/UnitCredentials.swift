import Foundation

/// The credentials the installed service unit loads (`LoadCredential=ID:PATH`), read from the
/// unit file and its drop-ins as systemd would find them. `check-config` run by hand has no
/// `$CREDENTIALS_DIRECTORY`; with these it checks the very files the service will get, instead
/// of failing on a profile that names its key as a credential.
public enum UnitCredentials {
    /// The unit the package installs.
    public static let unit = "maskinporten-broker.service"
    /// Where systemd looks for system units, most important first.
    public static let searchPath = [
        "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system",
    ]

    /// Credential ID to file, from the first unit file found and every drop-in, in systemd's
    /// order (drop-ins by name; an empty `LoadCredential=` clears the list). Empty when the unit
    /// is not installed.
    public static func load(unit: String = unit, searchPath: [String] = searchPath) -> [String: String] {
        guard let main = searchPath.map({ "\($0)/\(unit)" }).first(where: { FileManager.default.fileExists(atPath: $0) }) else { return [:] }
        var dropIns: [String: String] = [:]
        for directory in searchPath.reversed() {
            let folder = "\(directory)/\(unit).d"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] where name.hasSuffix(".conf") {
                dropIns[name] = "\(folder)/\(name)"  // a drop-in of the same name higher up wins
            }
        }
        var credentials: [String: String] = [:]
        for file in [main] + dropIns.keys.sorted().map({ dropIns[$0]! }) {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else { continue }
            var section = ""
            for rawLine in text.split(separator: "\n") {
                let line = rawLine.trimmingCharacters(in: .whitespaces)
                if line.hasPrefix("[") {
                    section = line
                    continue
                }
                guard section == "[Service]", line.hasPrefix("LoadCredential=") else { continue }
                let value = line.dropFirst("LoadCredential=".count)
                if value.isEmpty {
                    credentials = [:]
                } else if let colon = value.firstIndex(of: ":") {
                    credentials[String(value[..<colon])] = String(value[value.index(after: colon)...])
                }
            }
        }
        return credentials
    }
}
