import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerConfig

/// YAML's corners, held to what the reader gave when they were recorded: documents that are
/// accepted parse to the recorded values, and documents that are refused give the recorded
/// error, word for word. (Recorded with the reader the configuration had before it read through
/// libyaml itself; `UPDATE_SNAPSHOTS=1` records anew, and the diff is the review.)
@Suite("YAML's corners read as recorded")
struct YAMLReadingTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var yaml: String
        var testDescription: String { name }
    }

    static let base = ConfigFixture.profile

    static let cases: [Case] = [
        // Accepted.
        Case(name: "the fixture", yaml: base),
        Case(
            name: "anchors and aliases",
            yaml: base + "\n    allow: &who\n      users: [root]\n      uids: [0, 1000]\n  second:\n    environment: tt02\n    client_id: other\n"
                + "    scopes: [a]\n    key:\n      encoded_jwk_file: second.jwk\n    allow: *who"),
        Case(
            name: "quoted, escaped and single-quoted",
            yaml: base.replacingOccurrences(of: "environment: tt02", with: "environment: \"tt\\x302\"")
                .replacingOccurrences(of: "client_id: 2f3c9a1e-7d4b-4c1e-9a3f-5b8e2d6c0a17", with: "client_id: 'it''s \u{e6}'")),
        Case(name: "a number where a list goes", yaml: base + "\n    resource: 5"),
        Case(
            name: "block list and tagged scalar",
            yaml: base.replacingOccurrences(
                of: "scopes: [altinn:serviceowner/notifications.create]", with: "scopes:\n      - !!str altinn:serviceowner/notifications.create\n      - \"b\""
            )),
        Case(name: "literal and folded block scalars", yaml: base + "\nlog_level: >-\n  info\nsocket:\n  path: |-\n    /run/x.sock\n  group: |\n    adm"),
        Case(name: "flow mapping and explicit key", yaml: base + "\n    ? allow\n    : {users: [root], groups: [adm]}"),
        Case(name: "nulls", yaml: base + "\n    resource: ~\n    altinn_test_org: null\nlog_level:\nsocket: ~"),
        Case(
            name: "document markers, comments and CRLF",
            yaml: ("%YAML 1.1\n---\n# comment\n" + base + " # trailing\n...\n").replacingOccurrences(of: "\n", with: "\r\n")),
        Case(name: "byte order mark", yaml: "\u{feff}" + base),
        Case(name: "numbers stay text", yaml: base + "\nsocket:\n  mode: 0660\nrefresh:\n  at_fraction: 0.75\n  min_valid_seconds: 120"),
        Case(name: "no implicit typing", yaml: base + "\nrefresh:\n  min_valid_seconds: 1e2"),
        Case(name: "yes is not true", yaml: base + "\naudit:\n  on_overflow: drop\n  summary_interval_seconds: 60\nmetrics_listen: 127.0.0.1:9100"),
        // Refused.
        Case(name: "empty", yaml: ""),
        Case(name: "comments only", yaml: "# nothing\n\n# here\n"),
        Case(name: "a lone document marker", yaml: "---\n"),
        Case(name: "tab", yaml: base.replacingOccurrences(of: "\n    scopes:", with: "\n\tscopes:")),
        Case(name: "unclosed flow list", yaml: "profiles:\n  notifications: [\n"),
        Case(name: "unclosed quote", yaml: base.replacingOccurrences(of: "environment: tt02", with: "environment: \"tt02")),
        Case(name: "a value where a mapping goes on", yaml: base.replacingOccurrences(of: "    environment: tt02", with: "    environment: tt02\n   oops: x")),
        Case(name: "mapping values not allowed", yaml: base.replacingOccurrences(of: "environment: tt02", with: "environment: tt02: x")),
        Case(name: "duplicate key", yaml: base + "\n    client_id: again"),
        Case(name: "two duplicate keys", yaml: base + "\n    scopes: [x]\n    client_id: again"),
        Case(name: "two documents", yaml: base + "\n---\nprofiles: {}\n"),
        Case(name: "undefined alias", yaml: base + "\n    allow: *nowhere"),
        Case(name: "an alias inside its own anchor", yaml: base + "\n    scopes: &s [a, *s]"),
        Case(name: "unknown escape", yaml: base.replacingOccurrences(of: "environment: tt02", with: "environment: \"tt\\q02\"")),
        Case(name: "a control character", yaml: base.replacingOccurrences(of: "tt02", with: "tt\u{1}02")),
        Case(name: "a mapping as a key", yaml: base + "\n    ? {a: 1}\n    : b"),
        Case(name: "a list as a key", yaml: base + "\n    [a, b]: c"),
        Case(name: "an alias to a mapping as a value", yaml: base + "\n    allow: &m\n      users: [root]\n    resource: *m"),
        Case(name: "YAML 2.0", yaml: "%YAML 2.0\n---\n" + base),
        Case(name: "an anchor with no node", yaml: "profiles: &"),
        Case(name: "a stray closing bracket", yaml: base + "\n]"),
        Case(name: "a key without a value at the top", yaml: "profiles"),
    ]

    static let snapshot = ConfigSnapshotTests.snapshots.appendingPathComponent("yaml-corners.txt")

    @Test("lists nested a million deep are refused with the line, not a crash; a configuration's depth is read")
    func deepNesting() throws {
        let deep = "profiles: " + String(repeating: "[", count: 1_000_000)
        let error = #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml: deep, file: "/etc/broker.yaml", baseDirectory: "/etc") }
        #expect(error?.code == .yamlSyntax && error?.line == 1, "\(String(describing: error))")
        #expect(error?.message.contains("nest deeper than 64 levels") == true, "\(String(describing: error))")
        let nested = "profiles: " + String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
        let shallow = #expect(throws: ConfigError.self) { try ConfigLoader.parse(yaml: nested, file: "/etc/broker.yaml", baseDirectory: "/etc") }
        #expect(shallow?.message.contains("expected a mapping") == true, "\(String(describing: shallow))")
    }

    @Test("every corner reads as recorded")
    func corners() throws {
        var rendered = ""
        for corner in Self.cases {
            rendered += "## \(corner.name)\n"
            do {
                let configuration = try ConfigLoader.parse(yaml: corner.yaml, file: "/etc/broker.yaml", baseDirectory: "/etc", environment: [:])
                rendered += ConfigSnapshotTests.render(configuration) + "\n"
            } catch let error as ConfigError {
                rendered += "refused: \(error.description)\n"
            }
        }
        if ProcessInfo.processInfo.environment["UPDATE_SNAPSHOTS"] == "1" {
            try rendered.write(to: Self.snapshot, atomically: true, encoding: .utf8)
        }
        let recorded = try String(contentsOf: Self.snapshot, encoding: .utf8)
        let got = rendered.split(separator: "## ", omittingEmptySubsequences: true)
        let want = recorded.split(separator: "## ", omittingEmptySubsequences: true)
        #expect(got.count == want.count)
        for (mine, theirs) in zip(got, want) where mine != theirs {
            Issue.record("read otherwise than recorded:\nnow:\n\(mine)\nrecorded:\n\(theirs)")
        }
    }
}
