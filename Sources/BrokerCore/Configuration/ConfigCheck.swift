import BrokerCrypto
import Foundation

/// What `check-config` does: validate the file and load every key, without starting anything.
public struct ConfigCheck: Sendable {
    /// The report for standard output (empty when the file itself could not be read).
    public var report: String
    /// Every problem found; the check passed when this is empty.
    public var errors: [ConfigError]

    /// Checks the file at `path`, loading keys with `loader`. Problems with one profile's key do
    /// not stop the others from being checked.
    public static func run(path: String, loader: KeyLoader = KeyLoader()) -> ConfigCheck {
        let loaded: LoadedConfiguration
        do {
            loaded = try LoadedConfiguration.load(path: path, loader: loader)
        } catch let error as ConfigError {
            return ConfigCheck(report: "", errors: [error])
        } catch {
            return ConfigCheck(report: "", errors: [ConfigError(.unreadableFile, file: path, keyPath: "", "\(error)")])
        }
        let configuration = loaded.configuration
        var lines = ["configuration \(path)"]
        for environment in configuration.environments.values.sorted(by: { $0.name < $1.name }) {
            lines.append(
                "environment \(environment.name): aud \(environment.issuer), token endpoint \(environment.tokenEndpoint), altinn \(environment.altinnPlatform ?? "-")"
            )
            if let problem = loaded.environmentProblems[environment.name] {
                lines.append("  error:        \(problem.message)")
            } else if let caFile = environment.caFile, let roots = loaded.trustRoots[environment.name] {
                lines.append("  ca_file:      \(caFile): \(roots) certificate\(roots == 1 ? "" : "s")")
            }
        }
        for profile in configuration.profiles {
            lines.append("profile \(profile.name)")
            if let credentials = loaded.credentials[profile.name] {
                lines += describe(profile, credentials)
            } else if let problem = loaded.problems[profile.name] {
                lines.append("  error:        \(problem.message)")
            }
        }
        for settings in configuration.platformAccessTokens {
            lines.append("platform access token \(settings.name)")
            if let issuer = loaded.platformAccessTokens[settings.name] {
                lines.append("  issuer:       \(settings.issuer), app \(settings.app), lifetime \(settings.lifetimeSeconds) s")
                lines.append(
                    "  key:          RSA \(issuer.keyBits) bits, certificate \(issuer.certificate.subject), expires \(day(issuer.certificate.notAfter))")
                lines.append("  allowed:      \(describe(settings.allow))")
            } else if let problem = loaded.platformAccessTokenProblems[settings.name] {
                lines.append("  error:        \(problem.message)")
            }
        }
        if let exchange = configuration.idPortenExchange {
            lines.append("id-porten exchange")
            lines.append("  environment:  \(exchange.environment.name) (\(exchange.environment.altinnPlatform ?? "-"))")
            lines.append("  allowed:      \(describe(exchange.allow))")
        }
        let errors = loaded.allProblems.map(\.error)
        let counted = "\(configuration.profiles.count) profile\(configuration.profiles.count == 1 ? "" : "s")"
        lines.append(errors.isEmpty ? "ok: \(counted)" : "\(errors.count) error\(errors.count == 1 ? "" : "s") in \(counted)")
        return ConfigCheck(report: lines.joined(separator: "\n") + "\n", errors: errors)
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
        } else {
            let age = credentials.madeAt.map { made in
                let days = Int((Date().timeIntervalSince(made) / 86_400).rounded(.down))
                return ", made \(day(made)) (\(days == 1 ? "1 day" : "\(days) days") ago)"
            }
            lines.append("  kid:          \(credentials.kid ?? "-")\(age ?? "")")
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

    private static func day(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day())
    }
}
