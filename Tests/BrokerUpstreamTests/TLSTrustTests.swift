import BrokerTestSupport
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Testing

@testable import BrokerConfig
@testable import BrokerTLS
@testable import BrokerTokens
@testable import BrokerUpstream

/// `ca_file` against a real TLS server: Python's `http.server` behind `ssl`, with a certificate
/// from a CA that `openssl` makes for the test. (`openssl s_server -www` cannot answer a POST.)
@Suite("TLS trust with ca_file", .timeLimit(.minutes(1)), .sharedKeys)
struct TLSTrustTests {
    struct TLSServer {
        let ca: TestCA
        let process: RunningProcess
        let port: Int
        var caFile: String { ca.caFile }
    }

    func startServer() async throws -> TLSServer {
        let ca = try await TestCA.make(for: "127.0.0.1")
        try ca.directory.write("server.py", Self.serverScript)
        let python = try await Command.run("sh", ["-c", "command -v python3"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        let process = try RunningProcess(python, [ca.directory.path("server.py"), ca.certificateFile, ca.keyFile])
        let output = try await process.waitForOutput(containing: "listening on ")
        guard let port = output.split(separator: " ").last.flatMap({ Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) else {
            throw TestSupportError("no port in \(output)")
        }
        return TLSServer(ca: ca, process: process, port: port)
    }

    /// Answers every POST like Maskinporten refusing a grant, over TLS on a free port.
    static let serverScript = """
        import http.server, ssl, sys
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = b'{"error":"invalid_grant","error_description":"from the TLS test server"}'
                self.send_response(400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(sys.argv[1], sys.argv[2])
        server.socket = context.wrap_socket(server.socket, server_side=True)
        print("listening on", server.server_address[1], flush=True)
        server.serve_forever()
        """

    func fetch(server: TLSServer, caFile: String?) async throws -> TokenError? {
        let fixture = try ConfigFixture()
        let path = try fixture.write(
            """
            environments:
              tls:
                maskinporten_issuer: https://127.0.0.1:\(server.port)/
            \(caFile.map { "    ca_file: \($0)" } ?? "")
            """ + "\n" + ConfigFixture.profile.replacingOccurrences(of: "environment: tt02", with: "environment: tls") + "\n    exchange: none")
        let configuration = try ConfigLoader.load(path: path)
        let credentials = try KeyLoader(environment: [:]).load(configuration.profiles[0], file: path)
        let broker = try TokenBroker(
            configuration: configuration, credentials: ["notifications": credentials],
            timeouts: .init(connect: .seconds(2), total: .seconds(4)), logger: Logger(label: "t", factory: { _ in SwiftLogNoOpLogHandler() }))
        defer { Task { await broker.shutdown() } }
        do {
            _ = try await broker.cache(for: "notifications")!.token()
            return nil
        } catch {
            return error
        }
    }

    @Test("with the CA in ca_file the TLS handshake succeeds; without it the server is not trusted")
    func caFileTrust() async throws {
        let server = try await startServer()
        defer { Task { try? await server.process.stop(SIGKILL) } }
        // The handshake works and the server's refusal comes through.
        let trusted = try await fetch(server: server, caFile: server.caFile)
        #expect(trusted?.kind == .rejected, "\(trusted?.description ?? "no error")")
        #expect(trusted?.upstream?.errorDescription == "from the TLS test server")
        let untrusted = try await fetch(server: server, caFile: nil)
        #expect(untrusted?.kind == .unavailable, "\(untrusted?.description ?? "no error")")
        #expect(untrusted?.reason.contains("TLS") == true || untrusted?.reason.lowercased().contains("certificate") == true, "\(untrusted?.description ?? "")")
    }

    @Test("a ca_file that is not PEM is named by check-config and refused by the broker")
    func badCAFile() async throws {
        let fixture = try ConfigFixture()
        try fixture.directory.write("ca.pem", "not a certificate")
        let path = try fixture.write(
            """
            environments:
              tls:
                maskinporten_issuer: https://127.0.0.1:1/
                ca_file: ca.pem
            """ + "\n" + ConfigFixture.profile.replacingOccurrences(of: "environment: tt02", with: "environment: tls") + "\n    exchange: none")
        let check = ConfigCheck.run(path: path, loader: KeyLoader(environment: [:]))
        #expect(check.errors.map(\.keyPath) == ["environments.tls.ca_file"])
        let configuration = try ConfigLoader.load(path: path)
        let credentials = try KeyLoader(environment: [:]).load(configuration.profiles[0], file: path)
        let error = #expect(throws: ConfigError.self) {
            try TokenBroker(configuration: configuration, credentials: ["notifications": credentials], logger: Logger(label: "t"))
        }
        #expect(error?.keyPath == "environments.tls.ca_file")
    }

    /// The fast path's connection: made as `WireClient.connect` makes it (blocking, off the
    /// loop), then a call written and its answer read non-blocking, as the loop does.
    func wireCall(server: TLSServer, caFile: String?, host: String = "127.0.0.1") throws(ForwardingFailure) -> String {
        let client = WireClient(caFile: caFile, proxy: .direct, connectTimeout: .seconds(2))
        guard let (endpoint, basePath) = client.endpoint(base: "https://\(host):\(server.port)") else { return "no endpoint" }
        let connection = try client.connect(to: endpoint)
        defer { connection.close() }
        let call = ForwardedRequest(method: .POST, url: "", headers: ["Content-Type": "application/json"], body: ByteBuffer(string: "{}"), timeout: .seconds(2))
        let bytes = client.request(call, to: endpoint, basePath: basePath, target: "/token", token: "secret-token")
        var written = 0
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        let deadline = ContinuousClock.now + .seconds(5)
        while ContinuousClock.now < deadline {
            if written < bytes.count, case .done(let count) = bytes.withUnsafeBytes({ connection.write(UnsafeRawBufferPointer(rebasing: $0[written...])) }) {
                written += count
                continue
            }
            let progress = buffer.withUnsafeMutableBytes { connection.read(into: $0) }
            switch progress {
            case .done(let count): answer += buffer[0..<count]
            case .closed: return String(decoding: answer, as: UTF8.self)
            case .failed(let reason): return "failed: \(reason)"
            case .wantRead, .wantWrite: usleep(2000)
            }
            if case .head(let head) = answer.withUnsafeBytes({ WireAnswerHead.parse($0, method: .POST) }), case .length(let length) = head.framing,
                answer.count >= head.length + length
            {
                return String(decoding: answer, as: UTF8.self)
            }
        }
        return "no answer: \(String(decoding: answer, as: UTF8.self))"
    }

    @Test("an address is checked as an address, a name as a name, even one of hexadecimal letters")
    func addresses() {
        for address in ["127.0.0.1", "10.1.2.3", "::1", "fe80::1", "2001:db8::7"] { #expect(TLSStream.isAddress(address), "\(address)") }
        for name in ["platform.tt02.altinn.no", "cafe.be", "dead.beef", "localhost", "1.2.3", "abc"] { #expect(!TLSStream.isAddress(name), "\(name)") }
    }

    @Test("the fast path's TLS: trusted with ca_file, the call and answer through it; refused without it, and for a name the certificate does not hold")
    func wireTrust() async throws {
        let server = try await startServer()
        defer { Task { try? await server.process.stop(SIGKILL) } }
        let answer = try wireCall(server: server, caFile: server.caFile)
        #expect(answer.hasPrefix("HTTP/1.0 400") && answer.hasSuffix("from the TLS test server\"}"), "\(answer)")
        for (caFile, host) in [(nil, "127.0.0.1"), (server.caFile, "localhost")] as [(String?, String)] {
            do {
                let taken = try wireCall(server: server, caFile: caFile, host: host)
                Issue.record("connected without trust (\(caFile ?? "no ca_file"), \(host)): \(taken)")
            } catch {
                if case .unreachable(let reason) = error {
                    #expect(reason.contains("certificate was not accepted"), "\(reason)")
                } else {
                    Issue.record("\(error)")
                }
            }
        }
    }
}
