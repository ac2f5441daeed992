import ArgumentParser

/// `token`: prints a token from the running daemon.
struct TokenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a token for a profile from the running daemon.",
        discussion: "Prints the bare token and a newline (with --json the whole answer). Exit 0, else one line on standard error and exit 1."
    )

    @Argument(help: "The profile.")
    var profile: String

    @Option(name: .long, help: ArgumentHelp("The daemon's socket (default: $MASKINPORTEN_BROKER_SOCKET, else /run/maskinporten-broker/broker.sock).", valueName: "path"))
    var socket: String?

    @Option(name: .customLong("min-valid"), help: ArgumentHelp("The token must have at least this many seconds left.", valueName: "seconds"))
    var minValid: Int?

    @Flag(name: .long, help: "Print the whole JSON answer.")
    var json = false

    func run() throws {
        let client = SocketClient(path: SocketClient.resolvePath(socket))
        var target = "/v1/token/" + Self.percentEncode(profile)
        if let minValid { target += "?min_valid=\(minValid)" }
        let response: SocketClient.Response
        do {
            response = try client.request("GET", target, accept: json ? "application/json" : "text/plain")
        } catch {
            printError("maskinporten-broker token: \(error)")
            throw ExitCode(1)
        }
        guard response.status == 200 else {
            printError("maskinporten-broker token: \(profile): HTTP \(response.status) \(ErrorBodyText.summary(response.text))")
            throw ExitCode(1)
        }
        var text = response.text
        if !text.hasSuffix("\n") { text += "\n" }
        printNow(text)
    }

    /// Keeps a profile name from changing the path or query.
    static func percentEncode(_ text: String) -> String {
        var result = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                result.append(Character(UnicodeScalar(byte)))
            default:
                let hex = String(byte, radix: 16, uppercase: true)
                result += "%" + (byte < 16 ? "0" + hex : hex)
            }
        }
        return result
    }
}

/// `health`: the probe for systemd, containers and monitoring.
struct HealthCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "health",
        abstract: "Check the running daemon: exit 0 healthy (with --ready: every profile can hand out a token), 1 not.",
        discussion: "Prints one line of reason. Usable as ExecStartPost=, a container HEALTHCHECK or a monitoring probe."
    )

    @Option(name: .long, help: ArgumentHelp("The daemon's socket.", valueName: "path"))
    var socket: String?

    @Flag(name: .long, help: "Check readiness (/readyz) instead of liveness (/healthz).")
    var ready = false

    @Option(name: .long, help: ArgumentHelp("Give up after this many seconds.", valueName: "seconds"))
    var timeout: Int = 5

    func run() throws {
        var client = SocketClient(path: SocketClient.resolvePath(socket))
        client.timeoutSeconds = max(1, timeout)
        let route = ready ? "/readyz" : "/healthz"
        do {
            let response = try client.request("GET", route, accept: "application/json, text/plain")
            if response.status == 200 {
                printNow(ready ? "ready" : "ok")
                return
            }
            printNow("not \(ready ? "ready" : "healthy"): HTTP \(response.status) \(response.text.split(separator: "\n").first.map(String.init) ?? "")")
        } catch {
            printNow("not \(ready ? "ready" : "healthy"): \(error)")
        }
        throw ExitCode(1)
    }
}
