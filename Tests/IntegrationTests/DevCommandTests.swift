import BrokerTestSupport
import Foundation
import Testing

@Suite("Command line: dev", .timeLimit(.minutes(1)), .sharedKeys)
struct DevCommandTests {
    @Test("dev prints a curl line that answers with a token, and cleans up on Ctrl-C")
    func devAnswersItsCurlLine() async throws {
        let runtime = try TemporaryDirectory(prefix: "xdg")
        var environment = ProcessInfo.processInfo.environment
        environment["XDG_RUNTIME_DIR"] = runtime.url.path
        let dev = try RunningProcess(try BrokerExecutable.path, ["dev"], environment: environment)
        let output = try await dev.waitForOutput(containing: "Ctrl-C stops both")
        let line = try #require(output.split(separator: "\n").first { $0.contains("curl --unix-socket") }).trimmingCharacters(in: .whitespaces)
        #expect(line.hasPrefix("curl --unix-socket \(runtime.url.path)/maskinporten-broker-dev-"))
        #expect(line.hasSuffix("http://localhost/v1/token/demo"))
        var answer = try await Command.run("sh", ["-c", line + " -sS"])
        for _ in 0..<50 where !answer.output.contains("access_token") {
            try await Task.sleep(for: .milliseconds(100))
            answer = try await Command.run("sh", ["-c", line + " -sS"])
        }
        let token = try #require(try JSONSerialization.jsonObject(with: answer.stdout) as? [String: Any])
        #expect(token["profile"] as? String == "demo")
        #expect(token["kind"] as? String == "altinn")
        #expect(try await dev.stop(SIGINT) == 0)
        let left = try FileManager.default.contentsOfDirectory(atPath: runtime.url.path)
        #expect(left.isEmpty, "dev left \(left)")
    }
}
