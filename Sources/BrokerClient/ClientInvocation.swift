/// A well-formed `token` or `health` call, as `maskinporten-brokerd`'s parser would read it
/// (`--name value` or `--name=value`, the last of a repeated option wins). Anything else is nil,
/// and goes to `maskinporten-brokerd`.
package enum ClientInvocation: Equatable, Sendable {
    case token(ClientCommands.TokenRequest)
    case health(socket: String?, ready: Bool, timeoutSeconds: Int)
    /// `--version`: answered here, so that it works without `maskinporten-brokerd` beside.
    case version
    case api(ClientCommands.ApiRequest)
    /// An `api` call that cannot be made as given: why, for standard error (exit 2).
    case usage(String)

    package init?(_ arguments: [String]) {
        guard let command = arguments.first else { return nil }
        if arguments == ["--version"] {
            self = .version
            return
        }
        if command == "api" {
            guard let parsed = Self.api(Array(arguments.dropFirst())) else { return nil }
            self = parsed
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

    /// `api PROFILE [METHOD] PATH [--data @FILE|@-|TEXT] [--header 'K: V']... [--include]
    /// [--socket PATH] [--system-user-org N [--external-ref R]] [--consumer-org N]`. Nil for
    /// `--help`, which `maskinporten-brokerd` answers.
    static func api(_ arguments: [String]) -> ClientInvocation? {
        let usage = "usage: maskinporten-broker api PROFILE [METHOD] PATH [--data @FILE|@-|TEXT] [--header 'Name: value']... [--include]"
        var positional: [String] = []
        var data: ClientCommands.ApiRequest.Data?
        var headers: [String] = []
        var include = false
        var options: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            if argument == "-h" || argument == "--help" { return nil }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                positional.append(argument)
                continue
            }
            let body = argument.dropFirst(2)
            var name = String(body)
            var value: String?
            if let equals = body.firstIndex(of: "=") {
                name = String(body[..<equals])
                value = String(body[body.index(after: equals)...])
            }
            if name == "include", value == nil {
                include = true
                continue
            }
            guard ["data", "header", "socket", "system-user-org", "external-ref", "consumer-org"].contains(name) else {
                return .usage("maskinporten-broker api: unknown option --\(name)\n\(usage)")
            }
            if value == nil {
                guard index < arguments.count else { return .usage("maskinporten-broker api: --\(name) needs a value\n\(usage)") }
                value = arguments[index]
                index += 1
            }
            let given = value ?? ""
            switch name {
            case "data":
                data = given == "@-" ? .standardInput : given.hasPrefix("@") ? .file(String(given.dropFirst())) : .text(given)
            case "header":
                guard let colon = given.firstIndex(of: ":"), colon != given.startIndex else {
                    return .usage("maskinporten-broker api: --header takes 'Name: value', not \(given)\n\(usage)")
                }
                headers.append(given)
            default:
                options[name] = given
            }
        }
        guard positional.count == 2 || positional.count == 3 else {
            return .usage("maskinporten-broker api: give a profile and a path (and a method before the path, if not GET or POST)\n\(usage)")
        }
        var method: String?
        if positional.count == 3 {
            let given = positional[1]
            guard !given.isEmpty, given.utf8.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else {
                return .usage("maskinporten-broker api: \(given) is not a method (GET, POST, PUT, PATCH, DELETE...)\n\(usage)")
            }
            method = given
        }
        let path = positional[positional.count - 1]
        guard path.hasPrefix("/") else {
            return .usage("maskinporten-broker api: the path starts with /, such as /notifications/api/v1/future/orders\n\(usage)")
        }
        var request = ClientCommands.ApiRequest(profile: positional[0], method: method, path: path, data: data)
        request.headers = headers
        request.include = include
        request.socket = options["socket"]
        request.systemUserOrg = options["system-user-org"]
        request.externalRef = options["external-ref"]
        request.consumerOrg = options["consumer-org"]
        return .api(request)
    }
}
