/// The name of every metric the daemon exports, in one place: each module records its own
/// (upstream calls in BrokerUpstream, refresh failures in BrokerTokens, the rest where the socket
/// renders them), all by these names. docs/metrics.md lists them, checked by a test.
package enum MetricName {
    /// Requests answered, by `route` and `status`.
    package static let requests = "maskinporten_broker_requests_total"
    /// Tokens handed out, by `profile`.
    package static let tokensServed = "maskinporten_broker_tokens_served_total"
    /// Requests refused by a profile's allow list, by `profile`.
    package static let accessDenied = "maskinporten_broker_access_denied_total"
    /// Calls upstream, by `endpoint` and `outcome`.
    package static let upstreamCalls = "maskinporten_broker_upstream_calls_total"
    /// Upstream latency, by `endpoint`.
    package static let upstreamLatency = "maskinporten_broker_upstream_latency_seconds"
    /// Failed fetches, by `profile`.
    package static let refreshFailures = "maskinporten_broker_refresh_failures_total"
    /// 1 for the state each `profile` is in, 0 for the others (`state`).
    package static let profileState = "maskinporten_broker_profile_state"
    /// Seconds until the held token of `profile` expires.
    package static let tokenExpirySeconds = "maskinporten_broker_token_expiry_seconds"
    /// Whole days until a certificate (`name`) expires.
    package static let certificateExpiryDays = "maskinporten_broker_certificate_expiry_days"
    /// 1 for the key (`profile`, `kid`) that signs, 0 for the others.
    package static let keySigning = "maskinporten_broker_key_signing"
    /// Where each key lives (`location`: `memory` or `tpm`), always 1.
    package static let keyLocation = "maskinporten_broker_key_location"
    /// Each key's age in days (`profile`, `kid`).
    package static let keyAgeDays = "maskinporten_broker_key_age_days"
    /// Reloads whose new key could not be used, by `profile`.
    package static let keyReloadFailures = "maskinporten_broker_key_reload_failures_total"
    /// 1 while rotation of `profile` is failing.
    package static let keyRotationFailing = "maskinporten_broker_key_rotation_failing"
    /// Failed rotation steps, by `profile`.
    package static let keyRotationFailures = "maskinporten_broker_key_rotation_failures_total"
    /// Seconds since `profile`'s last rotation.
    package static let keyRotationSecondsSinceLast = "maskinporten_broker_key_rotation_seconds_since_last"
    /// Connections open now.
    package static let openConnections = "maskinporten_broker_open_connections"
    /// Connections closed to make room for new ones.
    package static let evictedConnections = "maskinporten_broker_evicted_connections_total"
    /// Log lines dropped because the destination did not keep up, by `stream` (`log`, `audit`).
    package static let logLinesDropped = "maskinporten_broker_log_lines_dropped_total"
    /// Gateway requests answered, by `profile`, `method` and `status` class (`2xx`...; `broker`
    /// for the broker's own errors).
    package static let gatewayRequests = "maskinporten_broker_gateway_requests_total"
    /// How long Altinn took to answer a gateway request (status and headers), by `profile`.
    package static let gatewayUpstreamLatency = "maskinporten_broker_gateway_upstream_latency_seconds"
    /// Gateway requests sent again with a new token after Altinn answered 401, by `profile`.
    package static let gatewayReplays = "maskinporten_broker_gateway_replays_total"
    /// Tokens put back at start from systemd's file descriptor store.
    package static let tokensRestored = "maskinporten_broker_tokens_restored_total"
    /// Tokens found in the store at start and discarded, by reason.
    package static let tokensDiscarded = "maskinporten_broker_tokens_discarded_total"

    /// Every name above.
    package static let all = [
        requests, tokensServed, accessDenied, upstreamCalls, upstreamLatency, refreshFailures, profileState, tokenExpirySeconds,
        certificateExpiryDays, keySigning, keyLocation, keyAgeDays, keyReloadFailures, keyRotationFailing, keyRotationFailures,
        keyRotationSecondsSinceLast, openConnections, evictedConnections, logLinesDropped, gatewayRequests, gatewayUpstreamLatency, gatewayReplays,
        tokensRestored, tokensDiscarded,
    ]
}
