import BrokerCrypto
import BrokerPOSIX
import FoundationEssentials
import Logging

/// What `check-config` does: validate the file and load every key, without starting anything.
package struct ConfigCheck: Sendable {
    /// The report for standard output (empty when the file itself could not be read).
    package var report: String
    /// Every problem found; the check passed when this is empty.
    package var errors: [ConfigError]
    /// What `serve` would warn about and serve anyway.
    package var warnings: [ConfigError] = []

    /// Checks the file at `path`, loading keys with `loader`. Problems with one profile's key do
    /// not stop the others from being checked. With the installed `unit`, the files `serve`
    /// reads are checked as the user the unit runs it as, when that is another user.
    package static func run(path: String, loader: KeyLoader = KeyLoader(), unit: ServiceUnit? = nil) -> ConfigCheck {
        let loaded: LoadedConfiguration
        do {
            loaded = try LoadedConfiguration.load(path: path, loader: loader)
        } catch let error as ConfigError {
            return ConfigCheck(report: "", errors: [error])
        } catch {
            return ConfigCheck(report: "", errors: [ConfigError(.unreadableFile, file: path, keyPath: "", "\(error)")])
        }
        return run(loaded, loader: loader, unit: unit)
    }

    /// Checks a configuration already loaded (with `loader`): what `serve --strict` refuses to
    /// start with, in check-config's words.
    package static func run(_ loaded: LoadedConfiguration, loader: KeyLoader, unit: ServiceUnit? = nil) -> ConfigCheck {
        let configuration = loaded.configuration
        let path = configuration.file
        let warnings = loaded.warnings(logLevel: Logger.Level(rawValue: configuration.logLevel) ?? .info)
        let socketProblems = loaded.socketProblems
        var lines = ["configuration \(path)"]
        if loader.readsUnitCredentials, configuration.profiles.contains(where: { if case .encodedJwkCredential = $0.keySource { true } else { false } }) {
            let files = loader.unitCredentials.sorted { $0.key < $1.key }.map { "\($0.key) from \($0.value)" }.joined(separator: ", ")
            lines.append("credentials as \(ServiceUnit.name) loads them: \(files)")
        }
        var accessProblems: [ConfigError] = []
        if let unit, let reader = unit.otherReader {
            accessProblems = loaded.accessProblems(for: reader, unit: unit)
            lines.append("files checked as \(reader.name), the user \(ServiceUnit.name) runs as")
            lines += accessProblems.filter { $0.keyPath.isEmpty }.map { "  error:        \($0.message)" }
        } else if let user = unit?.user, user != "root", FileReader.account(user) == nil {
            accessProblems.append(
                ConfigError(
                    .unknownAccount, file: path, keyPath: "",
                    "\(ServiceUnit.name) runs as User=\(user), which this host does not have; install the package's sysusers.d file (systemd-sysusers) or correct User="
                ))
            lines.append("  error:        \(accessProblems[0].message)")
        }
        if let unit {
            accessProblems += loaded.tpmProblems(unit: unit, reader: unit.otherReader)
        }
        let socket = configuration.socket
        lines.append(
            "socket \(socket.path), mode \(String(socket.mode, radix: 8).leftPadded(to: 4))\(socket.group.map { ", group \($0)" } ?? "") (unless systemd passes the socket in)"
        )
        for problem in socketProblems {
            lines.append("  error:        \(problem.message)")
        }
        if socketProblems.isEmpty, let directory = UnixListener.missingDirectory(of: socket.path) {
            lines.append("  note:         \(directory) does not exist; serve creates it (mode 0755)")
        }
        for environment in configuration.environmentsInUse {
            let builtIn = configuration.environments[environment.name] == nil ? " (built in)" : ""
            lines.append(
                "environment \(environment.name)\(builtIn): aud \(environment.issuer), token endpoint \(environment.tokenEndpoint), altinn \(environment.altinnPlatform ?? "-")"
            )
            if let problem = loaded.environmentProblems[environment.name] {
                lines.append("  error:        \(problem.message)")
            } else if let caFile = environment.caFile, let roots = loaded.trustRoots[environment.name] {
                lines.append("  ca_file:      \(caFile): \(roots) certificate\(roots == 1 ? "" : "s")")
            }
            lines.append("  upstream:     \(describe(environment.proxy))")
            lines += findingLines(accessProblems, under: "environments.\(environment.name).", "error")
        }
        for profile in configuration.profiles {
            lines.append("profile \(profile.name)")
            if let credentials = loaded.credentials[profile.name] {
                lines += describe(profile, credentials)
            } else if let problem = loaded.problems[profile.name] {
                lines.append("  error:        \(problem.message)")
            }
            lines += findingLines(accessProblems, under: "profiles.\(profile.name).", "error")
            lines += findingLines(warnings, under: "profiles.\(profile.name).", "warning")
        }
        for settings in configuration.platformAccessTokens {
            lines.append("platform access token \(settings.name)")
            if let issuer = loaded.platformAccessKeys[settings.name] {
                lines.append("  issuer:       \(settings.issuer), app \(settings.app), lifetime \(settings.lifetimeSeconds) s")
                lines.append(
                    "  key:          RSA \(issuer.key.bits) bits, certificate \(issuer.certificate.subject), expires \(day(issuer.certificate.notAfter))")
                lines.append("  allowed:      \(describe(settings.allow))")
            } else if let problem = loaded.platformAccessTokenProblems[settings.name] {
                lines.append("  error:        \(problem.message)")
            }
            lines += findingLines(accessProblems, under: "platform_access_tokens.\(settings.name).", "error")
            lines += findingLines(warnings, under: "platform_access_tokens.\(settings.name).", "warning")
        }
        if let exchange = configuration.idPortenExchange {
            lines.append("id-porten exchange")
            lines.append("  environment:  \(exchange.environment.name) (\(exchange.environment.altinnPlatform ?? "-"))")
            lines.append("  allowed:      \(describe(exchange.allow))")
            lines += findingLines(warnings, under: "id_porten_exchange.", "warning")
        }
        lines.append(
            "audit on_overflow \(configuration.audit.onOverflow.rawValue), repeats counted every \(configuration.audit.summaryIntervalSeconds) s, log level \(configuration.logLevel)"
        )
        lines += findingLines(warnings, under: "audit.", "warning")
        let errors = socketProblems + loaded.allProblems.map(\.error) + accessProblems
        var served = [counted(configuration.profiles.count, "profile")]
        if !configuration.platformAccessTokens.isEmpty { served.append(counted(configuration.platformAccessTokens.count, "platform access token")) }
        if configuration.idPortenExchange != nil { served.append("the ID-porten exchange") }
        var summary = errors.isEmpty ? "ok: \(served.joined(separator: ", "))" : bySection(errors, "error")
        if !warnings.isEmpty { summary += "; " + bySection(warnings, "warning") }
        lines.append(summary)
        return ConfigCheck(report: lines.joined(separator: "\n") + "\n", errors: errors, warnings: warnings)
    }

    /// `3 errors: 2 in profiles, 1 in socket`.
    private static func bySection(_ findings: [ConfigError], _ noun: String) -> String {
        var counts: [String: Int] = [:]
        for finding in findings {
            counts[finding.keyPath.split(separator: ".").first.map(String.init) ?? "the file", default: 0] += 1
        }
        let sections = counts.sorted { $0.key < $1.key }.map { "\($0.value) in \($0.key)" }
        return "\(counted(findings.count, noun)): \(sections.joined(separator: ", "))"
    }

    private static func counted(_ count: Int, _ noun: String) -> String {
        "\(count) \(noun)\(count == 1 ? "" : "s")"
    }

    private static func findingLines(_ findings: [ConfigError], under prefix: String, _ kind: String) -> [String] {
        findings.filter { $0.keyPath.hasPrefix(prefix) }.map { "  \(kind):\(String(repeating: " ", count: 13 - kind.count))\($0.message)" }
    }

    /// `through the proxy http://proxy:3128 (from https_proxy in the daemon's environment);
    /// directly: example.com (from no_proxy ...)`, or `directly`.
    private static func describe(_ proxy: ProxySettings) -> String {
        guard let server = proxy.server else {
            return "directly" + (proxy.source.map { " (\($0))" } ?? "")
        }
        var text = "through the proxy \(server) (\(proxy.source.map(String.init(describing:)) ?? "-"))"
        if !proxy.bypass.isEmpty {
            text += "; directly: \(proxy.bypass)\(proxy.bypassSource.map { " (\($0))" } ?? ""), and loopback"
        } else {
            text += "; directly: loopback only"
        }
        return text
    }

    private static func describe(_ profile: Profile, _ credentials: SigningCredentials) -> [String] {
        var lines = [
            "  environment:  \(profile.environment.name) (aud \(profile.environment.issuer), token endpoint \(profile.environment.tokenEndpoint))",
            "  client id:    \(profile.clientID)",
        ]
        if let chain = credentials.certificateChain {
            let leaf = chain[0]
            lines.append(
                "  x5c:          \(leaf.subject) (organisation \(leaf.subjectSerialNumber ?? "unknown")), issued by \(leaf.issuer), expires \(day(leaf.notAfter)), chain of \(chain.count)"
            )
        } else if credentials.keys.count > 1 {
            lines.append(
                "  keys:         \(credentials.keys.count) in the JWK Set, oldest first; the newest signs once Maskinporten accepts it, until then the newest it accepts"
            )
            for (index, key) in credentials.keys.enumerated() {
                let newest = index == credentials.keys.count - 1 ? " (newest)" : ""
                lines.append("  kid:          \(key.kid), RSA \(key.privateKey.bits) bits, \(key.algorithm)\(age(key.madeAt))\(newest)")
            }
        } else {
            lines.append("  kid:          \(credentials.kid ?? "-")\(age(credentials.madeAt))")
        }
        lines += [
            "  key:          RSA \(credentials.privateKey.bits) bits, \(profile.keySource.summary)",
            "  algorithm:    \(credentials.algorithm)",
            "  scopes:       \(profile.scopes.joined(separator: " "))",
            "  exchange:     \(profile.exchange == .altinn ? "altinn (\(profile.environment.altinnPlatform ?? "-")\(profile.altinnTestOrg ? ", test organisation" : ""))" : "none (the Maskinporten token is handed out)")",
        ]
        if let resource = profile.resource { lines.append("  resource:     \(resource.joined(separator: " "))") }
        if let org = profile.consumerOrg { lines.append("  consumer org: \(org)") }
        if let org = profile.systemUserOrg {
            lines.append("  system user:  \(org)\(profile.systemUserExternalRef.map { " (external ref \($0))" } ?? "")")
        }
        if let rotation = profile.rotation {
            lines.append(
                "  rotation:     a new key every \(duration(rotation.every)), the previous one removed \(duration(rotation.retireAfter)) after the new one is accepted, through \(profile.environment.selfServiceAPI ?? "-") with \(rotation.selfServiceProfile.map { "profile \($0)'s token" } ?? "this client's own token"); keys and progress in \(PathText.directory(of: rotation.stateFile))"
            )
        }
        lines.append("  allowed:      \(describe(profile.allow))")
        return lines
    }

    private static func describe(_ allow: AccessList?) -> String {
        guard let allow else { return "root and the daemon's own user only (no allow list)" }
        var parts: [String] = []
        if !allow.users.isEmpty { parts.append("users \(allow.users.joined(separator: ", "))") }
        if !allow.groups.isEmpty { parts.append("groups \(allow.groups.joined(separator: ", "))") }
        if !allow.uids.isEmpty { parts.append("uids \(allow.uids.map(String.init).joined(separator: ", "))") }
        return parts.isEmpty ? "nobody but root and the daemon's own user (empty allow list)" : parts.joined(separator: "; ")
    }

    /// `90d`, `12h`, `30m` or `45s`: the largest unit that divides it.
    private static func duration(_ seconds: Int) -> String {
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] where seconds >= size && seconds % size == 0 { return "\(seconds / size)\(unit)" }
        return "\(seconds)s"
    }

    /// `, made 2026-11-29 (3 days ago)` when the key records when it was made.
    private static func age(_ madeAt: Date?) -> String {
        guard let made = madeAt else { return "" }
        let days = Int((Date().timeIntervalSince(made) / 86_400).rounded(.down))
        return ", made \(day(made)) (\(days == 1 ? "1 day" : "\(days) days") ago)"
    }

    private static func day(_ date: Date) -> String {
        UTCTimestamp.day(date)
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
