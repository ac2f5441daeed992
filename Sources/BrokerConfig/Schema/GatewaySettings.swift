import BrokerPOSIX

/// A profile's `gateway:`: `ANY /v1/api/{profile}/{path}` on the socket is sent on to the
/// environment's Altinn platform with the profile's Altinn token, for the paths listed.
package struct GatewaySettings: Sendable, Hashable {
    /// `paths`: the prefixes a caller may reach. Each starts and ends with `/`, so that a prefix
    /// names whole segments (`/notifications/api/v1/` does not let `/notifications/api/v10` through).
    package var paths: [String]
    /// `platform_access_token`: the name of a configured Platform Access Token sent along as the
    /// `PlatformAccessToken` header, when set.
    package var platformAccessToken: String?
    /// `max_body_bytes`: the largest request body sent on; a larger one is refused with 413.
    package var maxBodyBytes: Int
    /// `timeout_seconds`: how long Altinn has to answer (its status and headers); then 504.
    package var timeoutSeconds: Int

    /// The Notifications API only: a service allowed to send notifications cannot reach other
    /// Altinn APIs with the organisation's token unless the operator says so.
    package static let defaultPaths = ["/notifications/api/v1/"]
    /// 1 MiB: an order with a few thousand recipients.
    package static let defaultMaxBodyBytes = 1_048_576
    /// The largest `max_body_bytes`: the body is held in memory, to be sent again after a 401.
    package static let maximumBodyBytes = 64 * 1_048_576
    /// The default `timeout_seconds`.
    package static let defaultTimeoutSeconds = 30

    /// Settings with the given values; the defaults are those of `gateway: {}`.
    package init(
        paths: [String] = GatewaySettings.defaultPaths, platformAccessToken: String? = nil, maxBodyBytes: Int = GatewaySettings.defaultMaxBodyBytes,
        timeoutSeconds: Int = GatewaySettings.defaultTimeoutSeconds
    ) {
        self.paths = paths
        self.platformAccessToken = platformAccessToken
        self.maxBodyBytes = maxBodyBytes
        self.timeoutSeconds = timeoutSeconds
    }

    /// Why `prefix` cannot be a `paths` entry, or nil when it can: it must be a plain absolute
    /// path of whole segments, since request paths are judged against it after normalisation
    /// (`GatewayPath`), and an entry that no normal path can start with would refuse everything.
    package static func problem(withPrefix prefix: String) -> String? {
        guard prefix.hasPrefix("/"), prefix.hasSuffix("/") else {
            return "\"\(prefix)\" must start and end with /, such as /notifications/api/v1/"
        }
        guard prefix != "/" else {
            return "\"/\" would let callers reach every Altinn API with the organisation's token: list the APIs' prefixes instead"
        }
        if prefix.containsText("//") { return "\"\(prefix)\" has an empty segment (//)" }
        if prefix.contains(where: { $0 == "%" || $0 == "?" || $0 == "#" || $0 == "\\" || $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 } == true }) {
            return "\"\(prefix)\" may hold only plain path characters (no %, ?, #, \\ or white space)"
        }
        if prefix.split(separator: "/").contains(where: { $0 == "." || $0 == ".." }) {
            return "\"\(prefix)\" has a . or .. segment"
        }
        return nil
    }
}
