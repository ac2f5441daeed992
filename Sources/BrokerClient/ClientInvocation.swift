/// A well-formed `token` or `health` call, as `maskinporten-brokerd`'s parser would read it
/// (`--name value` or `--name=value`, the last of a repeated option wins). Anything else is nil,
/// and goes to `maskinporten-brokerd`.
package enum ClientInvocation: Equatable, Sendable {
    case token(ClientCommands.TokenRequest)
    case health(socket: String?, ready: Bool, timeoutSeconds: Int)
    /// `--version`: answered here, so that it works without `maskinporten-brokerd` beside.
    case version

    package init?(_ arguments: [String]) {
        guard let command = arguments.first else { return nil }
        if arguments == ["--version"] {
            self = .version
            return
        }
        var positional: [String] = []
        var options: [String: String] = [:]
        var flags: Set<String> = []
        let valued: Set<String>
        let flagNames: Set<String>
        switch command {
        case "token": (valued, flagNames) = (["socket", "min-valid", "system-user-org", "external-ref", "consumer-org"], ["json"])
        case "health": (valued, flagNames) = (["socket", "timeout"], ["ready"])
        default: return nil
        }
        var index = 1
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-") else {
                positional.append(argument)
                continue
            }
            guard argument.hasPrefix("--"), argument.count > 2 else { return nil }  // -h, -, --
            let body = argument.dropFirst(2)
            let name: String
            let inline: String?
            if let equals = body.firstIndex(of: "=") {
                (name, inline) = (String(body[..<equals]), String(body[body.index(after: equals)...]))
            } else {
                (name, inline) = (String(body), nil)
            }
            if flagNames.contains(name), inline == nil {
                flags.insert(name)
            } else if valued.contains(name) {
                if let inline {
                    options[name] = inline
                } else {
                    guard index < arguments.count, !arguments[index].hasPrefix("-") else { return nil }
                    options[name] = arguments[index]
                    index += 1
                }
            } else {
                return nil
            }
        }
        switch command {
        case "token":
            guard positional.count == 1 else { return nil }
            var minValid: Int?
            if let text = options["min-valid"] {
                guard let value = Int(text) else { return nil }
                minValid = value
            }
            self = .token(
                ClientCommands.TokenRequest(
                    profile: positional[0], socket: options["socket"], minValid: minValid, json: flags.contains("json"),
                    systemUserOrg: options["system-user-org"], externalRef: options["external-ref"], consumerOrg: options["consumer-org"]))
        default:
            guard positional.isEmpty else { return nil }
            var timeout = ClientCommands.defaultHealthTimeoutSeconds
            if let text = options["timeout"] {
                guard let value = Int(text) else { return nil }
                timeout = value
            }
            self = .health(socket: options["socket"], ready: flags.contains("ready"), timeoutSeconds: timeout)
        }
    }
}
