import BrokerPOSIX

/// Which upstream answered.
package enum UpstreamEndpoint: String, Sendable, Hashable, Codable {
    /// Maskinporten's token endpoint.
    case maskinporten
    /// Altinn's token exchange.
    case altinn
    /// Digdir's self-service API for clients (key rotation).
    case selfService = "self_service"

    /// The upstream's name in messages.
    package var displayName: String {
        switch self {
        case .maskinporten: "Maskinporten"
        case .altinn: "Altinn"
        case .selfService: "the self-service API"
        }
    }
}

/// What an upstream said when it refused: its status and OAuth2 or problem-details fields,
/// cut short and cleaned of control characters. Never holds a token.
package struct UpstreamAnswer: Sendable, Hashable, Codable {
    /// The HTTP status.
    package var status: Int
    /// `error` (OAuth2) or `title` (problem details).
    package var error: String?
    /// `error_description` (OAuth2), `detail` (problem details) or the start of a text body.
    package var errorDescription: String?
    /// `error_uri`, when Maskinporten sent one.
    package var errorURI: String?

    /// Creates an answer.
    package init(status: Int, error: String? = nil, errorDescription: String? = nil, errorURI: String? = nil) {
        self.status = status
        self.error = error.map(Self.clean)
        self.errorDescription = errorDescription.map(Self.clean)
        self.errorURI = errorURI.map(Self.clean)
    }

    enum CodingKeys: String, CodingKey {
        case status, error
        case errorDescription = "error_description"
        case errorURI = "error_uri"
    }

    /// At most 300 printable characters: upstream text goes into logs and client answers.
    static func clean(_ text: String) -> String { LogText.printable(text) }
}

/// Why no token could be handed out.
package struct TokenError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure, which decides the retry schedule and the client's status code.
    package enum Kind: String, Sendable, Hashable {
        /// Upstream refused (4xx other than 408/429): a configuration or key problem. Retried slowly.
        case rejected
        /// Upstream could not be reached or is failing (5xx, 408, 429, timeouts, connection
        /// errors). Retried with exponential backoff.
        case unavailable
        /// Upstream answered something that is not what the protocol says (not JSON, missing
        /// fields, not a JWT, already expired).
        case malformed
        /// A forced refresh came too soon after the last one.
        case rateLimited
        /// The caller asked for more remaining lifetime than upstream's tokens have.
        case insufficientLifetime
    }

    /// The kind of failure.
    package var kind: Kind
    /// Which upstream, when one was involved.
    package var endpoint: UpstreamEndpoint?
    /// What went wrong, for logs and clients; never a token or key.
    package var reason: String
    /// What the upstream answered, when it answered.
    package var upstream: UpstreamAnswer?
    /// How long the upstream (or the rate limit) asks us to wait.
    package var retryAfter: Duration?
    /// The fetch was stopped because the daemon is stopping: nothing failed, nothing to report.
    package var stopped = false

    /// Creates an error.
    package init(_ kind: Kind, endpoint: UpstreamEndpoint? = nil, _ reason: String, upstream: UpstreamAnswer? = nil, retryAfter: Duration? = nil) {
        self.kind = kind
        self.endpoint = endpoint
        self.reason = reason
        self.upstream = upstream
        self.retryAfter = retryAfter
    }

    package var description: String {
        var text = "\(kind.rawValue)"
        if let endpoint { text += " by \(endpoint.rawValue)" }
        text += ": \(reason)"
        // The reason already names the HTTP status: the upstream's own words follow it.
        if let error = upstream?.error { text += ": \(error)" }
        if let description = upstream?.errorDescription { text += ": \(description)" }
        return text
    }
}
