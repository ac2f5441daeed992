// Benchmarks for maskinporten-broker, printed as figures and ratios next to a reference measured
// in the same run. Not a test: these machines are shared and noisy, so nothing here asserts.
//
//   Benchmarks/run                 # release build, then every benchmark
//   Benchmarks/run --rounds 5      # more alternating rounds

import BrokerConfig
import BrokerCrypto
import BrokerUpstream
import Foundation

// MARK: - Setup

/// Command-line settings.
struct Settings {
    var rounds = 3
    var seconds = 3.0

    static func parse() -> Settings {
        var settings = Settings()
        var arguments = CommandLine.arguments.dropFirst()
        while let argument = arguments.popFirst() {
            switch argument {
            case "--rounds": settings.rounds = Int(arguments.popFirst() ?? "") ?? settings.rounds
            case "--seconds": settings.seconds = Double(arguments.popFirst() ?? "") ?? settings.seconds
            default:
                FileHandle.standardError.write(Data("usage: BrokerBenchmarks [--rounds N] [--seconds S]\n".utf8))
                exit(2)
            }
        }
        return settings
    }
}

let settings = Settings.parse()
let rounds = settings.rounds

/// Runs a command and returns its standard output.
func run(_ executable: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = [executable] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
        throw NSError(
            domain: "bench", code: Int(process.terminationStatus),
            userInfo: [NSLocalizedDescriptionKey: "\(executable) \(arguments.joined(separator: " ")) failed"])
    }
    return String(decoding: data, as: UTF8.self)
}

let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("broker-bench-\(getpid())")
try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: scratch) }
let keyPath = scratch.appendingPathComponent("key.pem").path
_ = try run("openssl", ["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", keyPath])
let key = try RSAPrivateKey(pem: Array(try Data(contentsOf: URL(fileURLWithPath: keyPath))))
try? FileManager.default.removeItem(atPath: keyPath)

let profile = Profile(
    name: "bench", environment: MaskinportenEnvironment.builtIn["tt02"]!, clientID: "2f3c9a1e-0000-4000-8000-000000000000",
    scopes: ["altinn:serviceowner/notifications.create"], keySource: .encodedJwkEnvironment(variable: "UNUSED"), kid: "bench",
    algorithm: .rs256, exchange: .altinn, altinnTestOrg: false
)
let builder = GrantBuilder(profile: profile, credentials: SigningCredentials(privateKey: key, kid: "bench", certificateChain: nil, algorithm: .rs256))

// MARK: - Measures

/// Grant signatures per second on this thread (one core) for `seconds`.
func grantRate(_ builder: GrantBuilder, seconds: Double) throws -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    let deadline = start + .milliseconds(Int(seconds * 1000))
    var count = 0
    while clock.now < deadline {
        for _ in 0..<16 { _ = try builder.makeGrant() }
        count += 16
    }
    let elapsed = start.duration(to: clock.now)
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

/// OpenSSL's own RSA-2048 sign rate: `openssl speed -seconds S rsa2048`, sign/s column.
func opensslRate(seconds: Double) throws -> Double {
    let output = try run("openssl", ["speed", "-seconds", String(Int(seconds)), "rsa2048"])
    guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("rsa 2048 bits") }) else {
        throw NSError(domain: "bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "no rsa 2048 line in openssl speed output"])
    }
    let fields = line.split(separator: " ", omittingEmptySubsequences: true)
    guard fields.count >= 7, let rate = Double(fields[5]) else {
        throw NSError(domain: "bench", code: 1, userInfo: [NSLocalizedDescriptionKey: "unexpected openssl speed line: \(line)"])
    }
    return rate
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

// MARK: - Run

let opensslVersion = (try? run("openssl", ["version"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? "openssl"
print("grant signatures, RSA-2048 RS256, one core: \(rounds) alternating rounds of \(Int(settings.seconds)) s; \(opensslVersion)")
var ours: [Double] = []
var theirs: [Double] = []
for round in 1...rounds {
    let a = try grantRate(builder, seconds: settings.seconds)
    let b = try opensslRate(seconds: settings.seconds)
    ours.append(a)
    theirs.append(b)
    print(String(format: "  round %d: broker %.1f grants/s, openssl speed %.1f sign/s", round, a, b))
}
let ratio = median(ours) / median(theirs)
print(
    String(
        format: "grant signatures/s (median)  broker %.1f  openssl %.1f  ratio %.3f  target >= 0.900  %@",
        median(ours), median(theirs), ratio, ratio >= 0.9 ? "met" : "MISSED"))

// MARK: - A grant signed in a TPM

/// How long one grant takes to sign, in milliseconds, each of `count` timed alone.
func signingTimes(_ builder: GrantBuilder, count: Int) throws -> [Double] {
    let clock = ContinuousClock()
    return try (0..<count).map { _ in
        let start = clock.now
        _ = try builder.makeGrant()
        let elapsed = start.duration(to: clock.now)
        return Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
    }
}

/// The same grant signed by a key in swtpm (a TPM simulator: a real TPM is slower still), beside
/// the key in memory. A report, not a target: grants are rare, one per token.
func tpmSigningReport() throws {
    guard (try? run("which", ["swtpm"])) != nil else {
        print("grant signing time in a TPM: skipped (apt install swtpm tpm2-openssl)")
        return
    }
    let state = scratch.appendingPathComponent("swtpm").path
    try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
    let simulator = Process()
    simulator.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    simulator.arguments = [
        "swtpm", "socket", "--tpm2", "--server", "type=unixio,path=\(state)/sock", "--ctrl", "type=unixio,path=\(state)/sock.ctrl", "--tpmstate",
        "dir=\(state)", "--flags", "not-need-init,startup-clear",
    ]
    simulator.standardOutput = FileHandle.nullDevice
    simulator.standardError = FileHandle.nullDevice
    try simulator.run()
    defer { simulator.terminate() }
    while !FileManager.default.fileExists(atPath: "\(state)/sock.ctrl") { usleep(10_000) }
    let tpmKey = try RSAPrivateKey.generate(provider: "tpm2", tcti: "swtpm:path=\(state)/sock")
    let tpmBuilder = GrantBuilder(profile: profile, credentials: SigningCredentials(privateKey: tpmKey, kid: "bench", certificateChain: nil, algorithm: .rs256))
    let count = 50
    let inTPM = try signingTimes(tpmBuilder, count: count)
    let inMemory = try signingTimes(builder, count: count)
    print(
        String(
            format: "grant signing time, median of %d  tpm %.2f ms (max %.2f)  memory %.2f ms (max %.2f)", count, median(inTPM),
            inTPM.max() ?? 0, median(inMemory), inMemory.max() ?? 0))
}

try tpmSigningReport()
