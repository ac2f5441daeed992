internal import BrokerPOSIX

/// The client commands, `token` and `health`, as both executables run them: the small
/// `maskinporten-broker` front (which starts in under a millisecond) and `maskinporten-brokerd`
/// (which has every command). Each returns the process's exit status.
package enum ClientCommands {
    /// What `token` asks for.
    package struct TokenRequest: Equatable, Sendable {
        /// The profile.
        package var profile: String
        /// `--socket`.
        package var socket: String?
        /// `--min-valid`.
        package var minValid: Int?
        /// `--json`.
        package var json = false
        /// `--system-user-org`: the system user's organisation (a profile with `delegation:`).
        package var systemUserOrg: String?
        /// `--external-ref`: the system user's external reference.
        package var externalRef: String?
        /// `--consumer-org`: the organisation acted for.
        package var consumerOrg: String?

        /// A request for `profile`.
        package init(
            profile: String, socket: String? = nil, minValid: Int? = nil, json: Bool = false, systemUserOrg: String? = nil, externalRef: String? = nil,
            consumerOrg: String? = nil
        ) {
            self.profile = profile
            self.socket = socket
            self.minValid = minValid
            self.json = json
            self.systemUserOrg = systemUserOrg
            self.externalRef = externalRef
            self.consumerOrg = consumerOrg
        }

        /// `/v1/token/PROFILE?...`.
        package var target: String {
            var query: [String] = []
            if let minValid { query.append("min_valid=\(minValid)") }
            if let systemUserOrg { query.append("system_user_org=" + percentEncode(systemUserOrg)) }
            if let externalRef { query.append("system_user_external_ref=" + percentEncode(externalRef)) }
            if let consumerOrg { query.append("consumer_org=" + percentEncode(consumerOrg)) }
            return "/v1/token/" + percentEncode(profile) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        }
    }

    /// `token PROFILE [--socket PATH] [--min-valid SECONDS] [--json] [--system-user-org N [--external-ref R]] [--consumer-org N]`:
    /// the bare token and a newline (with `json` the whole answer) on standard output, exit 0;
    /// else one line on standard error, exit 1.
    package static func token(_ request: TokenRequest) -> Int32 {
        let client = SocketClient(path: SocketClient.resolvePath(request.socket))
        let profile = request.profile
        let response: SocketClient.Response
        do {
            response = try client.request("GET", request.target, accept: request.json ? "application/json" : "text/plain")
        } catch {
            printError("maskinporten-broker token: \(error)")
            return 1
        }
        guard response.status == 200 else {
            printError("maskinporten-broker token: \(profile): HTTP \(response.status) \(ErrorBodyText.summary(response.text))")
            return 1
        }
        printNow(response.text)
        return 0
    }

    /// `health`'s `--timeout` when none is given, in both executables.
    package static let defaultHealthTimeoutSeconds = 5

    /// `health [--socket PATH] [--ready] [--timeout SECONDS]`: one line of reason on standard
    /// output; exit 0 healthy (with `ready`: ready), 1 not.
    package static func health(socket: String?, ready: Bool, timeoutSeconds: Int) -> Int32 {
        var client = SocketClient(path: SocketClient.resolvePath(socket))
        client.timeoutSeconds = max(1, timeoutSeconds)
        let route = ready ? "/readyz" : "/healthz"
        do {
            let response = try client.request("GET", route, accept: "application/json, text/plain")
            if response.status == 200 {
                printNow(ready ? "ready" : "ok")
                return 0
            }
            printNow("not \(ready ? "ready" : "healthy"): HTTP \(response.status) \(response.text.split(separator: "\n").first.map(String.init) ?? "")")
        } catch {
            printNow("not \(ready ? "ready" : "healthy"): \(error)")
        }
        return 1
    }

    /// Keeps a profile name from changing the path or query.
    package static func percentEncode(_ text: String) -> String {
        PercentEncoding.encode(text, keeping: "-_.")
    }
}
