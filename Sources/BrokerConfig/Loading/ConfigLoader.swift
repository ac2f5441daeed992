import BrokerCrypto
import BrokerPOSIX
import FoundationEssentials

#if canImport(Glibc)
    import Glibc
#endif

/// Reads and validates the configuration file (docs/configuration.md).
package enum ConfigLoader {
    /// Where the configuration lives when neither `--config` nor the environment says otherwise.
    package static let defaultPath = "/etc/maskinporten-broker/broker.yaml"
    /// The environment variable naming the configuration file.
    package static let pathVariable = "MASKINPORTEN_BROKER_CONFIG"

    /// `--config`, else `$MASKINPORTEN_BROKER_CONFIG`, else the default path.
    package static func resolvePath(explicit: String?, environment: [String: String]? = nil) -> String {
        let environment = environment ?? ProcessEnvironment.all
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment[pathVariable], !fromEnvironment.isEmpty { return fromEnvironment }
        return defaultPath
    }

    /// Reads and validates the file at `path`. Keys are not loaded here (see `KeyLoader`).
    ///
    /// - Throws: `ConfigError` naming the file, the key path and what is wrong.
    /// `environment` is the daemon's (for `https_proxy` and `no_proxy`); nil: this process's.
    package static func load(path: String, environment: [String: String]? = nil) throws -> BrokerConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            if access(path, R_OK) != 0, errno == EACCES, let denied = KeyLoader.denied(path, file: path, keyPath: "") { throw denied }
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read as UTF-8 text" : "does not exist"
            throw ConfigError(.unreadableFile, file: path, keyPath: "", "the configuration file \(reason)")
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        return try parse(yaml: text, file: path, baseDirectory: directory, environment: environment)
    }

    /// Validates YAML text; `file` names it in errors and `baseDirectory` anchors relative paths.
    package static func parse(yaml: String, file: String, baseDirectory: String, environment: [String: String]? = nil) throws -> BrokerConfiguration {
        let root: YAMLNode
        do {
            guard let composed = try YAMLDocument.compose(yaml) else {
                throw ConfigError(.empty, file: file, keyPath: "", "the configuration file is empty")
            }
            root = composed
        } catch let error as YAMLSyntaxError {
            throw syntaxError(error, file: file, yaml: yaml)
        }
        return try ConfigParser(file: file, baseDirectory: baseDirectory, processEnvironment: environment ?? ProcessEnvironment.all)
            .parse(root)
    }

    /// A YAML syntax error, located, in libyaml's words, without the file's text (which could
    /// hold anything the user pasted).
    private static func syntaxError(_ error: YAMLSyntaxError, file: String, yaml: String) -> ConfigError {
        switch error {
        case .syntax(let context, let problem, let line, let column):
            let detail = context.map { "\($0) " } ?? ""
            // libyaml's words for a tab ("found character that cannot start any token") do not
            // say it is one; editors show a tab as spaces.
            let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
            let tab =
                lines.indices.contains(line - 1) && lines[line - 1].contains("\t")
                ? "; line \(line) holds a tab character, and YAML indents with spaces only: replace the tab with spaces" : ""
            return ConfigError(.yamlSyntax, file: file, keyPath: "", line: line, "YAML syntax error at column \(column): \(detail)\(problem)\(tab)")
        case .duplicateKeys(let keys, let line):
            return ConfigError(
                .yamlSyntax, file: file, keyPath: "", line: line, "the key \(keys.map { "\"\($0)\"" }.joined(separator: ", ")) appears twice in one mapping")
        case .unreadable(let problem):
            return ConfigError(.yamlSyntax, file: file, keyPath: "", "the file is not readable YAML: \(problem)")
        case .memory:
            return ConfigError(.yamlSyntax, file: file, keyPath: "", "the file is not valid YAML")
        }
    }
}

// MARK: - Parser

/// Walks the YAML tree section by section.
private struct ConfigParser {
    let file: String
    let baseDirectory: String
    /// The daemon's environment: `https_proxy`, `no_proxy`.
    let processEnvironment: [String: String]

    static let allowKeys = ["users", "groups", "uids"]
    static let profileKeys = [
        "environment", "client_id", "scopes", "key", "keys", "algorithm", "exchange", "altinn_test_org", "resource",
        "consumer_org", "system_user_org", "system_user_external_ref", "allow", "rotation", "delegation", "gateway",
    ]

    func parse(_ root: YAMLNode) throws -> BrokerConfiguration {
        let top = try YAMLMapping(
            root, file: file, path: "",
            known: [
                "socket", "refresh", "environments", "profiles", "platform_access_tokens", "id_porten_exchange", "log_level", "metrics_listen", "audit",
                "state_directory", "proxy", "no_proxy",
            ])
        let socket = try parseSocket(top.mapping("socket", known: ["path", "mode", "group"]))
        let refresh = try parseRefresh(top.mapping("refresh", known: ["at_fraction", "min_valid_seconds", "key_probe_seconds"]))
        var environments: [String: MaskinportenEnvironment] = [:]
        var builtInProxies: [String: ProxySettings] = [:]
        for (name, section) in try top.namedMappings(
            "environments",
            known: ["maskinporten_issuer", "maskinporten_token_endpoint", "altinn_platform", "ca_file", "self_service_api", "proxy", "no_proxy"])
        {
            if let builtIn = MaskinportenEnvironment.builtIn[name], section.pairs.allSatisfy({ ["proxy", "no_proxy"].contains($0.key) }) {
                // A built-in environment takes only how to reach it.
                builtInProxies[name] = try proxy(for: builtIn, section, top)
                continue
            }
            var environment = try parseEnvironment(name: name, section)
            environment.proxy = try proxy(for: environment, section, top)
            environments[name] = environment
        }
        let lookup = { (name: String, mapping: YAMLMapping, key: String) throws -> MaskinportenEnvironment in
            if let environment = environments[name] { return environment }
            if var environment = MaskinportenEnvironment.builtIn[name] {
                environment.proxy = try builtInProxies[name] ?? proxy(for: environment, nil, top)
                return environment
            }
            let known = (MaskinportenEnvironment.builtIn.keys.sorted() + environments.keys.sorted()).joined(separator: ", ")
            if let alias = MaskinportenEnvironment.portalNames[name.lowercased()] {
                throw mapping.error(
                    .unknownEnvironment, key,
                    "unknown environment \"\(name)\": Samarbeidsportalen calls Maskinporten's \(alias.portal) environment \"\(name)\", this broker calls it by Altinn's name: use environment: \(alias.environment)"
                )
            }
            throw mapping.error(.unknownEnvironment, key, "unknown environment \"\(name)\" (known: \(known); define others under environments)")
        }
        let stateDirectory = try top.string("state_directory").map(absolutePath) ?? stateDirectoryFromEnvironment()
        let profileSections = try top.namedMappings("profiles", known: Self.profileKeys)
        let profiles = try profileSections.map { name, section in
            try parseProfile(name: name, section, environment: lookup, stateDirectory: stateDirectory)
        }.sorted { $0.name < $1.name }
        for (name, section) in profileSections {
            try checkRotation(of: name, section, profiles: profiles)
        }
        try checkOneTPM(profileSections, profiles: profiles)
        let platformAccessTokens = try top.namedMappings(
            "platform_access_tokens", known: ["issuer", "app", "certificate_file", "private_key_file", "lifetime_seconds", "allow"]
        ).map { name, section in
            try parsePlatformAccessToken(name: name, section)
        }.sorted { $0.name < $1.name }
        for (name, section) in profileSections {
            guard let wanted = profiles.first(where: { $0.name == name })?.gateway?.platformAccessToken,
                !platformAccessTokens.contains(where: { $0.name == wanted })
            else { continue }
            let known = platformAccessTokens.isEmpty ? "none is configured" : "configured: " + platformAccessTokens.map(\.name).joined(separator: ", ")
            throw try section.mapping("gateway", known: Self.gatewayKeys)!.error(
                .invalidValue, "platform_access_token", "no Platform Access Token named \"\(wanted)\" (\(known)); define it under platform_access_tokens")
        }
        var idPorten: IDPortenExchangeSettings?
        if let section = try top.mapping("id_porten_exchange", known: ["environment", "allow"]) {
            let environment = try lookup(try section.requiredString("environment", what: "the environment"), section, "environment")
            if environment.altinnPlatform == nil {
                throw section.error(
                    .invalidValue, "environment", "environment \"\(environment.name)\" has no altinn_platform, which the ID-porten exchange needs")
            }
            idPorten = IDPortenExchangeSettings(environment: environment, allow: try parseAccessList(section.mapping("allow", known: Self.allowKeys)))
        }
        let logLevel = try top.string("log_level") ?? "info"
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) else {
            throw top.error(.invalidValue, "log_level", "\"\(logLevel)\" is not a level: use trace, debug, info, notice, warning, error or critical")
        }
        var metricsListen: (host: String, port: Int)?
        if let text = try top.string("metrics_listen") {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
                throw top.error(.invalidValue, "metrics_listen", "\"\(text)\" is not HOST:PORT (for example 127.0.0.1:9464)")
            }
            var host = String(text[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { throw top.error(.invalidValue, "metrics_listen", "\"\(text)\" has no host") }
            metricsListen = (host, port)
        }
        let audit = try parseAudit(top.mapping("audit", known: ["on_overflow", "summary_interval_seconds"]))
        if profiles.isEmpty && platformAccessTokens.isEmpty && idPorten == nil {
            throw ConfigError(.empty, file: file, keyPath: "profiles", "nothing to serve: define at least one profile under profiles")
        }
        return BrokerConfiguration(
            file: file, socket: socket, refresh: refresh, environments: environments,
            profiles: profiles, platformAccessTokens: platformAccessTokens, idPortenExchange: idPorten, logLevel: logLevel, metricsListen: metricsListen,
            audit: audit, stateDirectory: stateDirectory
        )
    }

    /// `$STATE_DIRECTORY` (systemd's `StateDirectory=`; the first, if it names several), else the default.
    func stateDirectoryFromEnvironment() -> String {
        let value = ProcessEnvironment.value("STATE_DIRECTORY") ?? ""
        return value.split(separator: ":").first.map(String.init) ?? BrokerConfiguration.defaultStateDirectory
    }

    // MARK: Sections

    func parseSocket(_ section: YAMLMapping?) throws -> SocketSettings {
        var socket = SocketSettings()
        guard let section else { return socket }
        if let path = try section.string("path") {
            guard path.hasPrefix("/") else { throw section.error(.invalidValue, "path", "the socket path must be absolute") }
            guard path.utf8.count < 108 else {
                throw section.error(.invalidValue, "path", "the socket path is \(path.utf8.count) bytes; Unix socket paths must be shorter than 108")
            }
            socket.path = path
        }
        if let text = try section.string("mode") {
            guard let mode = UInt32(text, radix: 8), mode <= 0o777 else {
                throw section.error(.invalidValue, "mode", "\"\(text)\" is not a file mode: write it in octal, quoted, like \"0660\"")
            }
            socket.mode = mode
        }
        socket.group = try section.string("group")
        return socket
    }

    func parseRefresh(_ section: YAMLMapping?) throws -> RefreshSettings {
        var refresh = RefreshSettings()
        guard let section else { return refresh }
        if let fraction = try section.double("at_fraction") {
            guard fraction >= 0.1, fraction <= 0.95 else {
                throw section.error(
                    .invalidValue, "at_fraction",
                    "must be between 0.1 and 0.95 (the share of a token's lifetime after which it is refreshed), found \(fraction)")
            }
            refresh.atFraction = fraction
        }
        if let seconds = try section.integer("min_valid_seconds") {
            guard (0...600).contains(seconds) else {
                throw section.error(.invalidValue, "min_valid_seconds", "must be between 0 and 600 seconds, found \(seconds)")
            }
            refresh.minValidSeconds = seconds
        }
        if let seconds = try section.integer("key_probe_seconds") {
            guard (10...86_400).contains(seconds) else {
                throw section.error(.invalidValue, "key_probe_seconds", "must be between 10 and 86400 seconds, found \(seconds)")
            }
            refresh.keyProbeSeconds = seconds
        }
        return refresh
    }

    func parseAudit(_ section: YAMLMapping?) throws -> AuditSettings {
        var audit = AuditSettings()
        guard let section else { return audit }
        if let text = try section.string("on_overflow") {
            guard let overflow = AuditSettings.Overflow(rawValue: text) else {
                throw section.error(
                    .invalidValue, "on_overflow",
                    "\"\(text)\" is not a choice: use drop (lines that cannot be buffered are dropped and counted) or refuse (no token is handed out while audit lines cannot be buffered)"
                )
            }
            audit.onOverflow = overflow
        }
        if let seconds = try section.integer("summary_interval_seconds") {
            guard (1...3600).contains(seconds) else {
                throw section.error(
                    .invalidValue, "summary_interval_seconds",
                    "must be between 1 and 3600 seconds (how often repeated hand-outs are counted in one line), found \(seconds)")
            }
            audit.summaryIntervalSeconds = seconds
        }
        return audit
    }

    func parseEnvironment(name: String, _ section: YAMLMapping) throws -> MaskinportenEnvironment {
        if MaskinportenEnvironment.builtIn[name] != nil {
            throw ConfigError(
                .invalidValue, file: file, keyPath: section.path, line: section.line,
                "\"\(name)\" is a built-in environment and cannot be redefined (only its proxy and no_proxy may be set here); choose another name")
        }
        try checkName(name, section: section)
        let issuer = try url(section, "maskinporten_issuer", required: true)!
        let endpoint = try url(section, "maskinporten_token_endpoint", required: false)
        let platform = try url(section, "altinn_platform", required: false)
        let caFile = try section.string("ca_file").map(absolutePath)
        let selfService = try url(section, "self_service_api", required: false)
        return MaskinportenEnvironment(
            name: name, issuer: issuer, tokenEndpoint: endpoint, altinnPlatform: platform, caFile: caFile, selfServiceAPI: selfService)
    }

    func parseProfile(
        name: String, _ section: YAMLMapping, environment lookup: (String, YAMLMapping, String) throws -> MaskinportenEnvironment, stateDirectory: String
    ) throws -> Profile {
        try checkName(name, section: section)
        let environment = try lookup(try section.requiredString("environment", what: "the environment (prod, tt02, ...)"), section, "environment")
        let clientID = try section.requiredString("client_id", what: "the Maskinporten client id")
        if clientID.containsWhitespace {
            throw section.error(.invalidValue, "client_id", "the client id must not contain white space")
        }
        guard let scopes = try section.stringList("scopes") else {
            throw section.error(.missingKey, "scopes", "at least one scope is required")
        }
        guard !scopes.isEmpty else { throw section.error(.invalidValue, "scopes", "at least one scope is required; the list is empty") }
        for scope in scopes where scope.isEmpty || scope.containsWhitespace {
            throw section.error(.invalidValue, "scopes", "\"\(scope)\" is not a scope: each scope is one word without white space")
        }
        let (source, kid) = try parseKeys(section)
        let algorithm = try section.string("algorithm").map { text in
            do { return try SigningAlgorithm(name: text) } catch {
                throw section.error(.invalidValue, "algorithm", "\"\(text)\" is not supported: use RS256, RS384 or RS512")
            }
        }
        let exchange: TokenExchange
        switch try section.string("exchange") {
        case nil, "altinn": exchange = .altinn
        case "none": exchange = .none
        case let other?: throw section.error(.invalidValue, "exchange", "\"\(other)\" is not an exchange: use altinn or none")
        }
        if exchange == .altinn && environment.altinnPlatform == nil {
            throw section.error(.invalidValue, "exchange", "environment \"\(environment.name)\" has no altinn_platform; add one or set exchange: none")
        }
        let testOrg = try section.bool("altinn_test_org") ?? false
        if testOrg && exchange == .none {
            throw section.error(.invalidValue, "altinn_test_org", "altinn_test_org applies to the Altinn exchange, but exchange is none")
        }
        let resource = try section.stringList("resource")
        if let resource {
            guard !resource.isEmpty else { throw section.error(.invalidValue, "resource", "the list is empty; leave resource out instead") }
            for item in resource where item.isEmpty || item.containsWhitespace {
                throw section.error(.invalidValue, "resource", "\"\(item)\" is not a resource: each is one URL or URN without white space")
            }
        }
        let consumerOrg = try organisationNumber(section, "consumer_org")
        let systemUserOrg = try organisationNumber(section, "system_user_org")
        let externalRef = try section.string("system_user_external_ref")
        if externalRef != nil && systemUserOrg == nil {
            throw section.error(.invalidValue, "system_user_external_ref", "system_user_external_ref needs system_user_org")
        }
        let allow = try parseAccessList(section.mapping("allow", known: Self.allowKeys))
        let rotation = try parseRotation(
            section.mapping("rotation", known: ["every", "retire_after", "self_service_profile"]), profile: name, source: source, kid: kid,
            environment: environment, stateDirectory: stateDirectory)
        let delegation = try parseDelegation(
            section.mapping("delegation", known: ["system_user_org", "consumer_org", "max_variants"]), fixedSystemUser: systemUserOrg != nil,
            fixedConsumer: consumerOrg != nil)
        let gateway = try parseGateway(section.mapping("gateway", known: Self.gatewayKeys), exchange: exchange)
        return Profile(
            name: name, environment: environment, clientID: clientID, scopes: scopes, keySource: source, kid: kid,
            algorithm: algorithm, exchange: exchange, altinnTestOrg: testOrg, resource: resource,
            consumerOrg: consumerOrg, systemUserOrg: systemUserOrg, systemUserExternalRef: externalRef, allow: allow, rotation: rotation,
            delegation: delegation, gateway: gateway
        )
    }

    static let gatewayKeys = ["paths", "platform_access_token", "max_body_bytes", "timeout_seconds"]

    func parseGateway(_ section: YAMLMapping?, exchange: TokenExchange) throws -> GatewaySettings? {
        guard let section else { return nil }
        guard exchange == .altinn else {
            throw section.error(
                .invalidValue, nil, "the gateway calls Altinn with the profile's Altinn token, and exchange: none gives none: remove exchange: none or gateway")
        }
        var settings = GatewaySettings()
        if let paths = try section.stringList("paths") {
            guard !paths.isEmpty else {
                throw section.error(.invalidValue, "paths", "the list is empty, which would refuse every call; leave paths out for the Notifications API")
            }
            for path in paths {
                if let problem = GatewaySettings.problem(withPrefix: path) { throw section.error(.invalidValue, "paths", problem) }
            }
            settings.paths = paths
        }
        settings.platformAccessToken = try section.string("platform_access_token")
        if let bytes = try section.integer("max_body_bytes") {
            guard (0...GatewaySettings.maximumBodyBytes).contains(bytes) else {
                throw section.error(
                    .invalidValue, "max_body_bytes",
                    "must be between 0 and \(GatewaySettings.maximumBodyBytes) (64 MiB: a body is held in memory to be sent again after a 401), found \(bytes)")
            }
            settings.maxBodyBytes = bytes
        }
        if let seconds = try section.integer("timeout_seconds") {
            guard (1...600).contains(seconds) else {
                throw section.error(.invalidValue, "timeout_seconds", "must be between 1 and 600 seconds, found \(seconds)")
            }
            settings.timeoutSeconds = seconds
        }
        return settings
    }

    func parseDelegation(_ section: YAMLMapping?, fixedSystemUser: Bool, fixedConsumer: Bool) throws -> DelegationSettings? {
        guard let section else { return nil }
        var settings = DelegationSettings(
            systemUserOrg: try organisationChoice(section, "system_user_org"), consumerOrg: try organisationChoice(section, "consumer_org"))
        guard settings.systemUserOrg != nil || settings.consumerOrg != nil else {
            throw section.error(.invalidValue, nil, "delegation lets callers choose nothing: set system_user_org or consumer_org (any, or a list)")
        }
        if fixedSystemUser && settings.systemUserOrg != nil {
            throw section.error(
                .invalidValue, "system_user_org",
                "the profile fixes system_user_org, and delegation lets callers choose it: keep one (remove the profile's system_user_org to let callers choose)"
            )
        }
        if fixedConsumer && settings.consumerOrg != nil {
            throw section.error(
                .invalidValue, "consumer_org",
                "the profile fixes consumer_org, and delegation lets callers choose it: keep one (remove the profile's consumer_org to let callers choose)")
        }
        if let maxVariants = try section.integer("max_variants") {
            guard (1...1_000_000).contains(maxVariants) else {
                throw section.error(.invalidValue, "max_variants", "must be between 1 and 1000000 (cached variants kept at most), found \(maxVariants)")
            }
            settings.maxVariants = maxVariants
        }
        return settings
    }

    /// `any`, or a list of organisation numbers.
    func organisationChoice(_ section: YAMLMapping, _ key: String) throws -> DelegationSettings.Choice? {
        guard let node = section.node(key), !node.isNull else { return nil }
        if case .scalar = node {
            let text = try section.string(key) ?? ""
            guard text == "any" else {
                throw section.error(
                    .invalidValue, key, "\"\(text)\" is not a choice: write any, or a list of organisation numbers such as [991825827]")
            }
            return .any
        }
        let list = try section.stringList(key) ?? []
        guard !list.isEmpty else { throw section.error(.invalidValue, key, "the list is empty; leave \(key) out instead") }
        var numbers: Set<OrganisationNumber> = []
        for text in list {
            do { numbers.insert(try OrganisationNumber(text)) } catch { throw section.error(.invalidValue, key, error.reason) }
        }
        return .only(numbers)
    }

    func parseRotation(
        _ section: YAMLMapping?, profile: String, source: KeySource, kid: String?, environment: MaskinportenEnvironment, stateDirectory: String
    ) throws -> RotationSettings? {
        guard let section else { return nil }
        if case .certificate = source {
            throw section.error(
                .invalidValue, nil, "rotation makes JWKs; a business certificate is renewed by its issuer: remove rotation, or use a JWK key")
        }
        // A TPM key's kid names it; a JWK Set's picks one of its keys, which rotation cannot.
        let inTPM = source.sources.last?.tpm
        if kid != nil, inTPM == nil {
            throw section.error(.invalidValue, nil, "key.kid pins one key, and rotation signs with the keys it makes: remove key.kid")
        }
        guard environment.selfServiceAPI != nil else {
            throw section.error(
                .invalidValue, nil,
                "environment \"\(environment.name)\" has no self_service_api (Digdir's .../api/v1/clients), which rotation calls: add one to the environment")
        }
        guard let everyText = try section.string("every") else {
            throw section.error(.missingKey, "every", "how old the newest key may get before a new one is made, such as 90d")
        }
        let every = try duration(section, "every", everyText)
        guard every >= 1 else { throw section.error(.invalidValue, "every", "must be at least 1s") }
        let retireAfter = try section.string("retire_after").map { try duration(section, "retire_after", $0) } ?? 86_400
        let directory = URL(fileURLWithPath: stateDirectory)
        return RotationSettings(
            every: every, retireAfter: retireAfter, selfServiceProfile: try section.string("self_service_profile"),
            keysFile: directory.appendingPathComponent("\(profile).keys.jwk").path,
            stateFile: directory.appendingPathComponent("\(profile).rotation.json").path,
            tpm: inTPM.map { RotationSettings.TPMKeys(tcti: $0, directory: directory.appendingPathComponent("\(profile).tpm-keys").path) }
        )
    }

    /// A rotation's `self_service_profile` names a profile that can call the self-service API.
    func checkRotation(of name: String, _ section: YAMLMapping, profiles: [Profile]) throws {
        guard let profile = profiles.first(where: { $0.name == name }), let rotation = profile.rotation,
            let selfService = rotation.selfServiceProfile,
            let rotationSection = try section.mapping("rotation", known: ["every", "retire_after", "self_service_profile"])
        else { return }
        guard let admin = profiles.first(where: { $0.name == selfService }) else {
            throw rotationSection.error(
                .invalidValue, "self_service_profile", "no profile \"\(selfService)\" (known: \(profiles.map(\.name).joined(separator: ", ")))")
        }
        let missing = RotationSettings.selfServiceScopes.filter { !admin.scopes.contains($0) }
        guard missing.isEmpty, admin.exchange == .none else {
            throw rotationSection.error(
                .invalidValue, "self_service_profile",
                "profile \"\(selfService)\" must have the scopes \(RotationSettings.selfServiceScopes.joined(separator: " and ")) and exchange: none to call the self-service API"
                    + (missing.isEmpty ? " (its exchange is altinn)" : " (it lacks \(missing.joined(separator: ", ")))"))
        }
        guard admin.environment.name == profile.environment.name else {
            throw rotationSection.error(
                .invalidValue, "self_service_profile",
                "profile \"\(selfService)\" is in environment \(admin.environment.name), this profile in \(profile.environment.name)")
        }
    }

    /// `90d`, `24h`, `30m`, `45s` or plain seconds.
    /// The tpm2 provider talks to one TPM per process (it reads its TCTI once, as it loads):
    /// every TPM key must name the same `tcti`, or none.
    func checkOneTPM(_ sections: [(name: String, mapping: YAMLMapping)], profiles: [Profile]) throws {
        var first: (profile: String, tcti: String?)?
        for (name, section) in sections {
            guard let profile = profiles.first(where: { $0.name == name }) else { continue }
            for tcti in profile.keySource.sources.compactMap(\.tpm) {
                guard let seen = first else {
                    first = (name, tcti)
                    continue
                }
                if seen.tcti != tcti {
                    let named = { (tcti: String?) in tcti.map { "tcti \($0)" } ?? "no tcti (the kernel's /dev/tpmrm0)" }
                    throw section.error(
                        .invalidValue, section.has("keys") ? "keys" : "key",
                        "this key's TPM is \(named(tcti)), profile \(seen.profile)'s is \(named(seen.tcti)); the daemon talks to one TPM: give every TPM key the same tcti"
                    )
                }
            }
        }
    }

    func duration(_ section: YAMLMapping, _ key: String, _ text: String) throws -> Int {
        let units: [Character: Int] = ["s": 1, "m": 60, "h": 3600, "d": 86_400]
        let trimmed = text.trimmed()
        let unit = trimmed.last.flatMap { units[$0] }
        let number = unit == nil ? trimmed : String(trimmed.dropLast())
        guard let value = Int(number), value >= 0, value <= 3650 * 86_400 / (unit ?? 1) else {
            throw section.error(.invalidValue, key, "\"\(text)\" is not a duration: write a number with s, m, h or d, such as 90d or 24h")
        }
        return value * (unit ?? 1)
    }

    static let keyKeys = [
        "encoded_jwk_file", "encoded_jwk_env", "encoded_jwk_credential", "certificate_file", "private_key_file", "provider", "uri", "tcti", "kid",
    ]

    /// A profile's `key:`, or its `keys:`: several keys, oldest first, from sources of any
    /// kind but a certificate (a JWK Set file beside a key in the TPM, say), promoted as a JWK
    /// Set's keys are.
    func parseKeys(_ section: YAMLMapping) throws -> (KeySource, kid: String?) {
        let single = try section.mapping("key", known: Self.keyKeys)
        let list = try section.mappingList("keys", known: Self.keyKeys)
        switch (single, list) {
        case (let single?, nil):
            return try parseKey(single)
        case (nil, let list?):
            guard !list.isEmpty else { throw section.error(.keySource, "keys", "the list is empty: give at least one key, or use key:") }
            guard list.count <= EncodedJwkFile.maximumKeys else {
                throw section.error(
                    .keySource, "keys", "\(list.count) keys; Maskinporten holds at most \(EncodedJwkFile.maximumKeys) per client: remove the oldest")
            }
            let entries = try list.map { entry in
                let (source, kid) = try parseKey(entry)
                if case .certificate = source {
                    throw ConfigError(
                        .keySource, file: file, keyPath: entry.path, line: entry.line,
                        "a business certificate signs alone (its grants carry x5c): it cannot be one of keys; use key:")
                }
                return KeyEntry(source: source, kid: kid)
            }
            return (.several(entries), nil)
        case (.some, .some):
            throw section.error(.keySource, "keys", "key and keys both name the profile's keys: keep one (keys lists several, oldest first)")
        case (nil, nil):
            throw section.error(
                .keySource, "key",
                "a key is required: set one of encoded_jwk_file, encoded_jwk_env, encoded_jwk_credential, certificate_file with private_key_file, or provider with uri (or keys: a list of them, oldest first)"
            )
        }
    }

    func parseKey(_ section: YAMLMapping) throws -> (KeySource, kid: String?) {
        var sources: [KeySource] = []
        if let path = try section.string("encoded_jwk_file") { sources.append(.encodedJwkFile(path: absolutePath(path))) }
        if let variable = try section.string("encoded_jwk_env") {
            guard !variable.isEmpty, variable.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw section.error(.invalidValue, "encoded_jwk_env", "\"\(variable)\" is not an environment variable name")
            }
            sources.append(.encodedJwkEnvironment(variable: variable))
        }
        if let name = try section.string("encoded_jwk_credential") {
            guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
                throw section.error(.invalidValue, "encoded_jwk_credential", "\"\(name)\" is not a credential name (the file name given to LoadCredential=)")
            }
            sources.append(.encodedJwkCredential(name: name))
        }
        let certificate = try section.string("certificate_file")
        let privateKey = try section.string("private_key_file")
        switch (certificate, privateKey) {
        case (let certificate?, let privateKey?):
            sources.append(.certificate(certificateFile: absolutePath(certificate), privateKeyFile: absolutePath(privateKey)))
        case (.some, nil):
            throw section.error(.keySource, "certificate_file", "certificate_file needs private_key_file, the certificate's private key in PEM")
        case (nil, .some):
            throw section.error(
                .keySource, "private_key_file", "private_key_file goes with certificate_file (a business certificate); for a JWK use encoded_jwk_file")
        case (nil, nil):
            break
        }
        let uri = try section.string("uri")
        let tcti = try section.string("tcti")
        if let provider = try section.string("provider") {
            guard !provider.isEmpty, provider.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }) else {
                throw section.error(.invalidValue, "provider", "\"\(provider)\" is not an OpenSSL provider's name, such as tpm2")
            }
            guard let uri, let colon = uri.firstIndex(of: ":"), colon != uri.startIndex, uri.index(after: colon) != uri.endIndex else {
                throw section.error(
                    .keySource, uri == nil ? "provider" : "uri",
                    "a provider's key is named by uri: such as uri: \"handle:0x81000001\" (a persistent TPM key) or uri: \"file:/etc/maskinporten-broker/credentials/notifications.tss2.pem\" (a TPM-wrapped key file)"
                )
            }
            if let tcti, tcti.isEmpty {
                throw section.error(.invalidValue, "tcti", "tcti is empty: remove it for the kernel's /dev/tpmrm0, or write device:/dev/tpm0, swtpm:path=...")
            }
            sources.append(.provider(name: provider, uri: uri.hasPrefix("file:") ? "file:" + absolutePath(String(uri.dropFirst(5))) : uri, tcti: tcti))
        } else if uri != nil || tcti != nil {
            throw section.error(
                .keySource, uri != nil ? "uri" : "tcti", "\(uri != nil ? "uri" : "tcti") goes with provider: (provider: tpm2 for a key in the TPM)")
        }
        let kid = try section.string("kid")
        switch sources.count {
        case 0:
            throw ConfigError(
                .keySource, file: file, keyPath: section.path, line: section.line,
                "no key source: set one of encoded_jwk_file, encoded_jwk_env, encoded_jwk_credential, certificate_file with private_key_file, or provider with uri"
            )
        case 1:
            break
        default:
            throw ConfigError(
                .keySource, file: file, keyPath: section.path, line: section.line,
                "exactly one key source is allowed, found \(sources.map(\.configKey).joined(separator: " and "))")
        }
        if case .certificate = sources[0], kid != nil {
            throw section.error(.keySource, "kid", "a business certificate key sends x5c, not kid: remove kid")
        }
        return (sources[0], kid)
    }

    func parsePlatformAccessToken(name: String, _ section: YAMLMapping) throws -> PlatformAccessTokenSettings {
        try checkName(name, section: section)
        var settings = PlatformAccessTokenSettings(
            name: name,
            issuer: try section.requiredString("issuer", what: "the issuer (your org code, such as ttd, or platform)"),
            app: try section.requiredString("app", what: "the app name"),
            certificateFile: absolutePath(try section.requiredString("certificate_file", what: "the certificate file")),
            privateKeyFile: absolutePath(try section.requiredString("private_key_file", what: "the private key file"))
        )
        if let lifetime = try section.integer("lifetime_seconds") {
            guard (30...3600).contains(lifetime) else {
                throw section.error(.invalidValue, "lifetime_seconds", "must be between 30 and 3600 seconds, found \(lifetime)")
            }
            settings.lifetimeSeconds = lifetime
        }
        settings.allow = try parseAccessList(section.mapping("allow", known: Self.allowKeys))
        return settings
    }

    func parseAccessList(_ section: YAMLMapping?) throws -> AccessList? {
        guard let section else { return nil }
        var list = AccessList()
        list.users = try section.stringList("users") ?? []
        list.groups = try section.stringList("groups") ?? []
        list.uids = try (section.stringList("uids") ?? []).map { text in
            guard let uid = UInt32(text) else { throw section.error(.invalidValue, "uids", "\"\(text)\" is not a numeric user id") }
            return uid
        }
        for name in list.users + list.groups where name.isEmpty || name.containsWhitespace || name.contains(":") {
            throw section.error(.invalidValue, list.users.contains(name) ? "users" : "groups", "\"\(name)\" is not a user or group name")
        }
        return list
    }

    // MARK: Values

    /// Profile, environment and token names appear in URL paths and metrics: keep them plain.
    func checkName(_ name: String, section: YAMLMapping) throws {
        let allowed = name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
                || byte == UInt8(ascii: ".")
        }
        guard allowed, !name.isEmpty, name.utf8.count <= 64, name != ".", name != ".." else {
            throw ConfigError(
                .invalidValue, file: file, keyPath: section.path, line: section.line,
                "\"\(name)\" is not a usable name: use up to 64 letters, digits, '-', '_' and '.'")
        }
    }

    func organisationNumber(_ section: YAMLMapping, _ key: String) throws -> OrganisationNumber? {
        guard let text = try section.string(key) else { return nil }
        do {
            return try OrganisationNumber(text)
        } catch {
            throw section.error(.invalidValue, key, error.reason)
        }
    }

    /// An `https://` URL, or `http://` to a loopback host.
    func url(_ section: YAMLMapping, _ key: String, required: Bool) throws -> String? {
        guard let text = try required ? section.requiredString(key, what: "\(key)") : section.string(key) else { return nil }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            let host = components.host, !host.isEmpty
        else {
            throw section.error(.invalidValue, key, "\"\(text)\" is not an absolute URL")
        }
        guard components.query == nil, components.fragment == nil, components.user == nil, components.password == nil else {
            throw section.error(.invalidValue, key, "\"\(text)\" must not carry a query, fragment or user info")
        }
        switch scheme {
        case "https":
            return text
        case "http":
            guard ProxySettings.isLoopback(host) else {
                throw section.error(
                    .insecureEndpoint, key, "plain http:// is allowed only to loopback hosts (127.0.0.0/8, ::1, localhost); use https:// for \(host)")
            }
            return text
        default:
            throw section.error(.invalidValue, key, "\"\(text)\" must use https://")
        }
    }

    // MARK: - Proxy

    /// How `environment` is reached: its section's `proxy:`, else the top level's, else the
    /// daemon's `https_proxy`; `no_proxy` likewise. An environment whose endpoints are all on
    /// loopback is reached directly, whatever the daemon's environment says.
    func proxy(for environment: MaskinportenEnvironment, _ section: YAMLMapping?, _ top: YAMLMapping) throws -> ProxySettings {
        var bypass: (NoProxy, ProxySettings.Source)?
        if let section, let list = try noProxy(section) {
            bypass = (list, .configuration(section.childPath("no_proxy")))
        } else if let list = try noProxy(top) {
            bypass = (list, .configuration("no_proxy"))
        }
        for mapping in [section, top].compactMap({ $0 }) {
            guard let text = try mapping.string("proxy") else { continue }
            let source = ProxySettings.Source.configuration(mapping.childPath("proxy"))
            if ["none", "direct"].contains(text.lowercased()) { return ProxySettings(server: nil, source: source) }
            do {
                let server = try ProxySettings.server(from: text)
                return ProxySettings(server: server, source: source, bypass: bypass?.0 ?? NoProxy(), bypassSource: bypass?.1)
            } catch {
                throw mapping.error(.invalidValue, "proxy", "the proxy URL \(error.reason)")
            }
        }
        let endpoints = [environment.tokenEndpoint, environment.altinnPlatform, environment.selfServiceAPI].compactMap { $0 }
        if endpoints.allSatisfy({ URLComponents(string: $0)?.host.map(ProxySettings.isLoopback) ?? true }) { return .direct }
        do {
            guard var settings = try ProxySettings.fromEnvironment(processEnvironment) else { return .direct }
            if let bypass {
                settings.bypass = bypass.0
                settings.bypassSource = bypass.1
            }
            return settings
        } catch {
            throw ConfigError(
                .invalidValue, file: file, keyPath: "proxy", "\(error.reason); correct it, or set proxy: in the configuration (proxy: none to go directly)")
        }
    }

    /// A `no_proxy:` list: comma-separated text or a list.
    func noProxy(_ mapping: YAMLMapping) throws -> NoProxy? {
        guard let node = mapping.node("no_proxy"), !node.isNull else { return nil }
        if case .sequence = node { return NoProxy(try mapping.stringList("no_proxy")!.joined(separator: ",")) }
        return try mapping.string("no_proxy").map(NoProxy.init)
    }

    func absolutePath(_ path: String) -> String {
        path.hasPrefix("/") ? path : URL(fileURLWithPath: baseDirectory).appendingPathComponent(path).standardizedFileURL.path
    }
}
