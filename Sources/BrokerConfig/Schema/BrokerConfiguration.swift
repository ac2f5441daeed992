package import BrokerCrypto

/// The whole configuration file, decoded and validated. Paths are absolute (relative ones are
/// taken from the configuration file's directory).
package struct BrokerConfiguration: Sendable {
    /// The file it was read from.
    package var file: String
    /// The listening socket.
    package var socket: SocketSettings
    /// When tokens are refreshed and how much life they must have left.
    package var refresh: RefreshSettings
    /// Environments defined in the file (built-in ones are not repeated here).
    package var environments: [String: MaskinportenEnvironment]
    /// Token profiles, sorted by name.
    package var profiles: [Profile]
    /// Platform Access Token issuers, sorted by name.
    package var platformAccessTokens: [PlatformAccessTokenSettings]
    /// The ID-porten exchange, when enabled.
    package var idPortenExchange: IDPortenExchangeSettings?
    /// `log_level`: trace, debug, info, notice, warning, error or critical (default info).
    package var logLevel: String = "info"
    /// `metrics_listen`: a TCP address serving nothing but `/metrics`, for Prometheus.
    package var metricsListen: (host: String, port: Int)?
    /// `audit:`: what happens when audit lines cannot be written, and how repeats are folded.
    package var audit = AuditSettings()
    /// `state_directory`: where key rotation keeps the keys it made and its progress (default
    /// `$STATE_DIRECTORY`, which systemd's `StateDirectory=` sets, else `/var/lib/maskinporten-broker`).
    package var stateDirectory: String = BrokerConfiguration.defaultStateDirectory

    /// The state directory when the file does not name one.
    package static let defaultStateDirectory = "/var/lib/maskinporten-broker"

    /// The profile called `name`.
    package func profile(named name: String) -> Profile? {
        profiles.first { $0.name == name }
    }
}

/// `socket:`.
package struct SocketSettings: Sendable, Hashable {
    /// The default socket path.
    package static let defaultPath = "/run/maskinporten-broker/broker.sock"
    /// Where to listen, when systemd does not pass a socket in.
    package var path: String = SocketSettings.defaultPath
    /// Permission bits of the socket file.
    package var mode: UInt32 = 0o660
    /// The socket file's group, if not the daemon's.
    package var group: String?

    /// Settings with the given values; the defaults are docs/configuration.md's.
    package init(path: String = SocketSettings.defaultPath, mode: UInt32 = 0o660, group: String? = nil) {
        self.path = path
        self.mode = mode
        self.group = group
    }
}

/// `refresh:`.
package struct RefreshSettings: Sendable, Hashable {
    /// Refresh once this share of a token's lifetime has passed.
    package var atFraction: Double = 0.75
    /// A token with less than this many seconds left is never handed out.
    package var minValidSeconds: Int = 10
    /// How often a newer key of a JWK Set that Maskinporten refused is tried again.
    package var keyProbeSeconds: Int = 300

    /// Settings with the given values; the defaults are docs/configuration.md's.
    package init(atFraction: Double = 0.75, minValidSeconds: Int = 10, keyProbeSeconds: Int = 300) {
        self.atFraction = atFraction
        self.minValidSeconds = minValidSeconds
        self.keyProbeSeconds = keyProbeSeconds
    }
}

/// `audit:`.
package struct AuditSettings: Sendable, Hashable {
    /// What a token request meets when its audit line cannot be buffered.
    package enum Overflow: String, Sendable, Hashable, CaseIterable {
        /// The line is dropped and counted; the token is handed out.
        case drop
        /// Fail closed: no token (503 `audit_unavailable`) until audit lines can be buffered again.
        case refuse
    }

    /// `on_overflow` (default `drop`).
    package var onOverflow: Overflow = .drop
    /// `summary_interval_seconds`: how often repeated hand-outs of a token to a process are
    /// written as one count line (default 60).
    package var summaryIntervalSeconds: Int = 60

    /// Settings with the given values; the defaults are docs/configuration.md's.
    package init(onOverflow: Overflow = .drop, summaryIntervalSeconds: Int = 60) {
        self.onOverflow = onOverflow
        self.summaryIntervalSeconds = summaryIntervalSeconds
    }
}

/// Who may fetch a profile's tokens, by the socket peer's credentials.
package struct AccessList: Sendable, Hashable {
    /// User names.
    package var users: [String] = []
    /// Group names (primary or supplementary).
    package var groups: [String] = []
    /// Numeric user ids.
    package var uids: [UInt32] = []

    /// A list of the given names and ids.
    package init(users: [String] = [], groups: [String] = [], uids: [UInt32] = []) {
        self.users = users
        self.groups = groups
        self.uids = uids
    }
}

/// What a Maskinporten token is turned into before it is handed out.
package enum TokenExchange: String, Sendable, Hashable {
    /// Exchanged for an Altinn token (the default).
    case altinn
    /// Handed out as Maskinporten issued it.
    case none
}

/// Where a profile's private key comes from.
package enum KeySource: Sendable, Hashable {
    /// A file holding the EncodedJwk.
    case encodedJwkFile(path: String)
    /// An environment variable holding the EncodedJwk.
    case encodedJwkEnvironment(variable: String)
    /// A systemd credential (`$CREDENTIALS_DIRECTORY/<name>`) holding the EncodedJwk.
    case encodedJwkCredential(name: String)
    /// A business certificate chain and its private key, in PEM: grants carry `x5c`.
    case certificate(certificateFile: String, privateKeyFile: String)
    /// A key held by an OpenSSL provider (a TPM through `tpm2`), named by URI (`handle:0x81000001`,
    /// `file:/path/key.tss2.pem`); `tcti` chooses the TPM.
    case provider(name: String, uri: String, tcti: String?)
    /// `keys:`: several keys, oldest first, each from a source of its own (never a certificate).
    case several([KeyEntry])

    /// For a key in the TPM, the `tcti` it names (inside, nil: the kernel's /dev/tpmrm0); nil
    /// for a key from any other source.
    package var tpm: String?? {
        guard case .provider("tpm2", _, let tcti) = self else { return nil }
        return .some(tcti)
    }

    /// The sources of single keys: this one, or each of `keys:`.
    package var sources: [KeySource] {
        guard case .several(let entries) = self else { return [self] }
        return entries.map(\.source)
    }

    /// The config key that names this source, for messages.
    package var configKey: String {
        switch self {
        case .several: "keys"
        case .encodedJwkFile: "encoded_jwk_file"
        case .encodedJwkEnvironment: "encoded_jwk_env"
        case .encodedJwkCredential: "encoded_jwk_credential"
        case .certificate: "certificate_file"
        case .provider: "provider"
        }
    }

    /// Where the key comes from, in words, for `check-config`.
    package var summary: String {
        switch self {
        case .encodedJwkFile(let path): "EncodedJwk file \(path)"
        case .encodedJwkEnvironment(let variable): "EncodedJwk in $\(variable)"
        case .encodedJwkCredential(let name): "EncodedJwk in systemd credential \(name)"
        case .certificate(let certificate, let key): "business certificate \(certificate) with key \(key)"
        case .provider(let name, let uri, let tcti):
            name == "tpm2"
                ? "in the TPM (tpm2 provider, \(uri), \(tcti ?? "device:/dev/tpmrm0"))" : "held by the OpenSSL provider \(name) (\(uri))"
        case .several(let entries): entries.map(\.source.summary).joined(separator: "; ")
        }
    }
}

/// One of a profile's `keys:`: where it comes from, and the kid that names it there.
package struct KeyEntry: Sendable, Hashable {
    /// Where the key (or the JWK Set) comes from.
    package var source: KeySource
    /// The entry's `kid:`, overriding the JWK's own or naming one key of a set.
    package var kid: String?

    /// An entry.
    package init(source: KeySource, kid: String?) {
        self.source = source
        self.kid = kid
    }
}

/// One `profiles.<name>` entry: what to ask Maskinporten for, with which key, and who gets it.
package struct Profile: Sendable {
    /// The profile's name, as used in `/v1/token/{profile}`.
    package var name: String
    /// Where its tokens come from.
    package var environment: MaskinportenEnvironment
    /// The Maskinporten client id (`iss` of the grant).
    package var clientID: String
    /// Scopes asked for.
    package var scopes: [String]
    /// Where the private key is read from.
    package var keySource: KeySource
    /// A `kid` that overrides the JWK's own, or names the key in a JWK Set.
    package var kid: String?
    /// The algorithm, if set in the file (otherwise the JWK's `alg`, otherwise RS256).
    package var algorithm: SigningAlgorithm?
    /// What the Maskinporten token is turned into.
    package var exchange: TokenExchange
    /// Use Altinn's test organisation (`?test=true` on the exchange).
    package var altinnTestOrg: Bool
    /// Audience-restricted tokens: the grant's `resource`.
    package var resource: [String]?
    /// Delegation: the organisation the token is for (`consumer_org`).
    package var consumerOrg: OrganisationNumber?
    /// System user: the organisation owning the system user (`authorization_details`).
    package var systemUserOrg: OrganisationNumber?
    /// System user: the external reference, when the system user has one.
    package var systemUserExternalRef: String?
    /// Who may fetch the tokens; nil means root and the daemon's own user only.
    package var allow: AccessList?
    /// `rotation:`: make and register new keys through the self-service API, when set.
    package var rotation: RotationSettings?
    /// `delegation:`: what callers may choose per request, when set.
    package var delegation: DelegationSettings?
    /// `gateway:`: the Altinn API calls the broker makes for callers with this profile's token,
    /// when set.
    package var gateway: GatewaySettings?

    /// A profile with the given settings; the defaults are those of a file that leaves them out.
    package init(
        name: String, environment: MaskinportenEnvironment, clientID: String, scopes: [String], keySource: KeySource,
        kid: String? = nil, algorithm: SigningAlgorithm? = nil, exchange: TokenExchange = .altinn, altinnTestOrg: Bool = false,
        resource: [String]? = nil, consumerOrg: OrganisationNumber? = nil, systemUserOrg: OrganisationNumber? = nil,
        systemUserExternalRef: String? = nil, allow: AccessList? = nil, rotation: RotationSettings? = nil, delegation: DelegationSettings? = nil,
        gateway: GatewaySettings? = nil
    ) {
        self.name = name
        self.environment = environment
        self.clientID = clientID
        self.scopes = scopes
        self.keySource = keySource
        self.kid = kid
        self.algorithm = algorithm
        self.exchange = exchange
        self.altinnTestOrg = altinnTestOrg
        self.resource = resource
        self.consumerOrg = consumerOrg
        self.systemUserOrg = systemUserOrg
        self.systemUserExternalRef = systemUserExternalRef
        self.allow = allow
        self.rotation = rotation
        self.delegation = delegation
        self.gateway = gateway
    }
}

/// One `platform_access_tokens.<name>` entry.
package struct PlatformAccessTokenSettings: Sendable {
    /// The name used in `/v1/platform-access-token/{name}`.
    package var name: String
    /// `iss`: the organisation (such as `ttd`) or `platform`.
    package var issuer: String
    /// `urn:altinn:app`.
    package var app: String
    /// The certificate whose thumbprint names the key.
    package var certificateFile: String
    /// Its private key.
    package var privateKeyFile: String
    /// Token lifetime in seconds.
    package var lifetimeSeconds: Int = 300
    /// Who may fetch the tokens.
    package var allow: AccessList?
}

/// `id_porten_exchange:`.
package struct IDPortenExchangeSettings: Sendable {
    /// Where the Altinn exchange lives.
    package var environment: MaskinportenEnvironment
    /// Who may use the exchange.
    package var allow: AccessList?
}

/// A profile's `rotation:`.
package struct RotationSettings: Sendable, Hashable {
    /// `every`: a new key is made when the newest is this old, seconds.
    package var every: Int
    /// `retire_after`: the previous key is removed from the client this long after the new one
    /// was accepted, seconds.
    package var retireAfter: Int
    /// `self_service_profile`: the profile whose token the self-service API is called with;
    /// nil: a token for this profile's client with the self-service scopes.
    package var selfServiceProfile: String?
    /// The file holding the keys rotation made for this profile (a JWK Set, mode 0600).
    package var keysFile: String
    /// The file recording how far rotation got (no key material).
    package var stateFile: String
    /// For a profile whose newest configured key is in the TPM: new keys are made in that TPM
    /// and kept, wrapped by it, in `directory`; nil: new keys are JWKs in `keysFile`.
    package var tpm: TPMKeys?

    /// Where rotation keeps the keys it makes in the TPM.
    package struct TPMKeys: Sendable, Hashable {
        /// The TPM (as the profile's key names it; nil: the kernel's /dev/tpmrm0).
        package var tcti: String?
        /// The directory of the TPM-wrapped key files (mode 0700).
        package var directory: String

        /// Settings with the given values.
        package init(tcti: String?, directory: String) {
            self.tcti = tcti
            self.directory = directory
        }
    }

    /// Settings with the given values.
    package init(every: Int, retireAfter: Int, selfServiceProfile: String?, keysFile: String, stateFile: String, tpm: TPMKeys? = nil) {
        self.every = every
        self.retireAfter = retireAfter
        self.selfServiceProfile = selfServiceProfile
        self.keysFile = keysFile
        self.stateFile = stateFile
        self.tpm = tpm
    }

    /// The scopes a self-service token carries.
    package static let selfServiceScopes = ["idporten:dcr.read", "idporten:dcr.write"]
}

/// A profile's `delegation:`: the delegation callers may choose per request, each choice its
/// own cached token (a variant).
package struct DelegationSettings: Sendable, Hashable {
    /// Which organisations a caller may name.
    package enum Choice: Sendable, Hashable {
        /// Any valid organisation number.
        case any
        /// Only these.
        case only(Set<OrganisationNumber>)

        /// Whether `organisation` may be named.
        package func permits(_ organisation: OrganisationNumber) -> Bool {
            switch self {
            case .any: true
            case .only(let list): list.contains(organisation)
            }
        }
    }

    /// `system_user_org`: the system user's organisation (the grant's `authorization_details`).
    package var systemUserOrg: Choice?
    /// `consumer_org`: the organisation acted for (the grant's `consumer_org`).
    package var consumerOrg: Choice?
    /// `max_variants`: cached variants kept at most; the least recently used go first.
    package var maxVariants: Int

    /// The default `max_variants`.
    package static let defaultMaxVariants = 10_000

    /// Settings with the given values.
    package init(systemUserOrg: Choice? = nil, consumerOrg: Choice? = nil, maxVariants: Int = DelegationSettings.defaultMaxVariants) {
        self.systemUserOrg = systemUserOrg
        self.consumerOrg = consumerOrg
        self.maxVariants = maxVariants
    }
}

extension BrokerConfiguration {
    /// Every environment defined or used, by name: those under `environments` and the built-in
    /// ones profiles and the ID-porten exchange name (with their proxy settings).
    package var environmentsInUse: [MaskinportenEnvironment] {
        var byName = environments
        for environment in profiles.map(\.environment) + [idPortenExchange?.environment].compactMap({ $0 }) where byName[environment.name] == nil {
            byName[environment.name] = environment
        }
        return byName.values.sorted { $0.name < $1.name }
    }
}
