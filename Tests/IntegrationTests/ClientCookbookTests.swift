import BrokerTestSupport
import Foundation
import Testing

/// The recipes in docs/clients.md, run as they are written there against `dev`, with a
/// stand-in for Altinn's Notifications API that refuses the first order with 401: each must get
/// a token, place the order, and after the 401 get a new token and place it again.
@Suite("docs/clients.md: the client cookbook", .timeLimit(.minutes(3)), .sharedKeys)
struct ClientCookbookTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The code block after `<!-- cookbook: NAME -->` in docs/clients.md.
    static func recipe(_ name: String) throws -> String {
        let text = try String(contentsOf: repository.appendingPathComponent("docs/clients.md"), encoding: .utf8)
        let marker = try #require(text.range(of: "<!-- cookbook: \(name) -->\n```"))
        let afterFence = try #require(text[marker.upperBound...].firstIndex(of: "\n"))
        let end = try #require(text[afterFence...].range(of: "\n```\n"))
        return String(text[text.index(after: afterFence)..<end.lowerBound]) + "\n"
    }

    /// `dev` running in a directory of its own; its socket path.
    static func startDev(in runtime: TemporaryDirectory) async throws -> (RunningProcess, String) {
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_RUNTIME_DIR"] = runtime.url.path
        let dev = try RunningProcess(try BrokerExecutable.path, ["dev"], environment: environment)
        let output = try await dev.waitForOutput(containing: "Ctrl-C stops both")
        let line = try #require(output.split(separator: "\n").first { $0.hasPrefix("  socket:") })
        let socket = String(try #require(line.split(separator: " ").last))
        // Ready once the demo profile holds its first token.
        for _ in 0..<100 {
            let health = try await BrokerExecutable.run(["health", "--ready", "--socket", socket])
            if health.status == 0 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return (dev, socket)
    }

    /// The stand-in Notifications API; its port and the log of the requests it got.
    static func startNotifications(in directory: TemporaryDirectory, first401: Bool) async throws -> (RunningProcess, String, String) {
        let log = directory.path("notifications.log")
        let script = repository.appendingPathComponent("Tests/clients/fake-notifications.py").path
        let server = try RunningProcess(try Command.which("python3"), [script, "--log", log] + (first401 ? ["--first-401"] : []))
        let port = try await server.waitForOutput(containing: "\n").trimmingCharacters(in: .whitespacesAndNewlines)
        return (server, "http://127.0.0.1:\(port)", log)
    }

    /// The three settings every recipe reads, as a service would be given them.
    static func environment(socket: String, platform: String) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        environment["MASKINPORTEN_BROKER_SOCKET"] = socket
        environment["PROFILE"] = "demo"
        environment["ALTINN_PLATFORM"] = platform
        return environment
    }

    static func requests(_ log: String) throws -> [[String: Any]] {
        try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
    }

    @Test("each recipe gets a token, places the order, and after a 401 gets a new token once", arguments: ["shell", "python", "go"])
    func recipeRecoversFrom401(language: String) async throws {
        let directory = try TemporaryDirectory(prefix: "cookbook")
        let (dev, socket) = try await Self.startDev(in: directory)
        let (server, platform, log) = try await Self.startNotifications(in: directory, first401: true)
        var environment = Self.environment(socket: socket, platform: platform)
        // The shell recipe calls maskinporten-broker as an installed command.
        let binaries = URL(fileURLWithPath: try BrokerExecutable.path).deletingLastPathComponent().path
        environment["PATH"] = binaries + ":" + (environment["PATH"] ?? "/usr/bin:/bin")

        let result: Command.Result
        switch language {
        case "shell":
            result = try await Command.run("sh", [try directory.write("notify.sh", try Self.recipe("shell"))], environment: environment)
        case "python":
            result = try await Command.run("python3", [try directory.write("notify.py", try Self.recipe("python"))], environment: environment)
        default:
            // Debian's golang-go (scripts/test installs it), with its caches in the test's directory.
            let go = try Command.which("go")
            for variable in ["HOME", "GOCACHE", "GOPATH"] { environment[variable] = directory.path(variable.lowercased()) }
            result = try await Command.run(go, ["run", try directory.write("notify.go", try Self.recipe("go"))], environment: environment)
        }
        #expect(result.status == 0, "\(result.output)\(result.errorOutput)")
        let answer = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.output)\(result.errorOutput)")
        #expect(answer["orderId"] is String)
        #expect(!result.output.contains("eyJ") && !result.errorOutput.contains("eyJ"), "a recipe never prints a token")

        let seen = try Self.requests(log)
        #expect(seen.map { $0["status"] as? Int } == [401, 201], "\(seen)")
        #expect(seen.allSatisfy { $0["order"] as? Bool == true }, "every request carries the order")
        let exp = try #require(seen.last?["exp"] as? Double)
        #expect(exp > Date().timeIntervalSince1970, "the retried order carries a valid Altinn token")
        _ = try await server.stop()
        #expect(try await dev.stop(SIGINT) == 0)
    }

    @Test("the curl recipe places the order, and its refresh line gives a new token")
    func curlRecipe() async throws {
        let directory = try TemporaryDirectory(prefix: "cookbook")
        let (dev, socket) = try await Self.startDev(in: directory)
        let (server, platform, log) = try await Self.startNotifications(in: directory, first401: false)
        let environment = Self.environment(socket: socket, platform: platform)
        let placed = try await Command.run("sh", ["-c", try Self.recipe("curl")], environment: environment)
        #expect(placed.status == 0, "\(placed.errorOutput)")
        #expect(placed.output.contains("\"orderId\""), "\(placed.output)")
        #expect(try Self.requests(log).map { $0["status"] as? Int } == [201])

        // The refresh line, after the first block: a token of three parts (only its header shown).
        let script =
            try Self.recipe("curl") + (try Self.recipe("curl-refresh")) + "printf '%s' \"$TOKEN\" | tr . '\\n' | wc -l; printf '%s' \"$TOKEN\" | cut -c1-3\n"
        let refreshed = try await Command.run("sh", ["-c", script], environment: environment)
        #expect(refreshed.status == 0, "\(refreshed.errorOutput)")
        #expect(refreshed.output.hasSuffix("2\neyJ\n"), "\(refreshed.output)")
        _ = try await server.stop()
        #expect(try await dev.stop(SIGINT) == 0)
    }
}

extension ClientCookbookTests {
    @Test(
        "each gateway recipe places an order through the broker, and never sees a token",
        arguments: ["gateway-curl", "gateway-cli", "gateway-python", "gateway-go"])
    func gatewayRecipe(name: String) async throws {
        let directory = try TemporaryDirectory(prefix: "cookbook")
        let (dev, socket) = try await Self.startDev(in: directory)
        var environment = Self.environment(socket: socket, platform: "unused")
        let binaries = URL(fileURLWithPath: try BrokerExecutable.path).deletingLastPathComponent().path
        environment["PATH"] = binaries + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        let recipe = try Self.recipe(name)
        let result: Command.Result
        switch name {
        case "gateway-python":
            result = try await Command.run("python3", [try directory.write("notify_gateway.py", recipe)], environment: environment)
        case "gateway-go":
            let go = try Command.which("go")
            for variable in ["HOME", "GOCACHE", "GOPATH"] { environment[variable] = directory.path(variable.lowercased()) }
            result = try await Command.run(go, ["run", try directory.write("notify_gateway.go", recipe)], environment: environment)
        default:
            result = try await Command.run("sh", ["-c", recipe], environment: environment)
        }
        #expect(result.status == 0, "\(result.output)\(result.errorOutput)")
        let answer = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any], "\(result.output)\(result.errorOutput)")
        #expect(answer["notificationOrderId"] is String)
        #expect(!result.output.contains("eyJ") && !result.errorOutput.contains("eyJ"), "a gateway recipe never sees a token")
        #expect(try await dev.stop(SIGINT) == 0)
    }
}
