import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerConfig

/// What each shipped example and the every-setting configuration parse to, held to a snapshot
/// of the loaded values: a change to how YAML is read (another parser under the strict reader)
/// must parse every file to the same values. `UPDATE_SNAPSHOTS=1 swift test --filter
/// ConfigSnapshotTests` writes the snapshots anew; the diff is the review.
@Suite("Configurations parse to the values recorded")
struct ConfigSnapshotTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let snapshots = repository.appendingPathComponent("Tests/BrokerConfigTests/Snapshots")

    static let files = [
        "config/broker.example.yaml", "config/container.example.yaml", "config/dev.example.yaml", "config/tt02.minimal.yaml",
        "Tests/BrokerConfigTests/Snapshots/every-setting.yaml",
    ]

    @Test("each configuration parses to its snapshot", arguments: files)
    func snapshot(_ file: String) throws {
        let path = Self.repository.appendingPathComponent(file).path
        // No environment: a proxy or state directory of the machine running the tests must not
        // show in the values.
        let configuration = try ConfigLoader.load(path: path, environment: [:])
        let rendered = Self.render(configuration).replacingOccurrences(of: Self.repository.path, with: "$REPOSITORY") + "\n"
        let snapshot = Self.snapshots.appendingPathComponent((file as NSString).lastPathComponent + ".values")
        if ProcessInfo.processInfo.environment["UPDATE_SNAPSHOTS"] == "1" {
            try rendered.write(to: snapshot, atomically: true, encoding: .utf8)
        }
        let recorded = try String(contentsOf: snapshot, encoding: .utf8)
        #expect(rendered == recorded, "\(file) no longer parses to \(snapshot.lastPathComponent); the values now:\n\(rendered)")
    }

    /// Every stored property, one a line, by name; dictionaries and sets in sorted order, so that
    /// the text does not change with the hash seed.
    static func render(_ value: Any, indent: String = "") -> String {
        let mirror = Mirror(reflecting: value)
        let inner = indent + "  "
        switch mirror.displayStyle {
        case .optional:
            return mirror.children.first.map { render($0.value, indent: indent) } ?? "nil"
        case .collection:
            if mirror.children.isEmpty { return "[]" }
            return "[\n" + mirror.children.map { inner + render($0.value, indent: inner) }.joined(separator: "\n") + "\n\(indent)]"
        case .set:
            if mirror.children.isEmpty { return "[]" }
            return "[\n" + mirror.children.map { inner + render($0.value, indent: inner) }.sorted().joined(separator: "\n") + "\n\(indent)]"
        case .dictionary:
            if mirror.children.isEmpty { return "[:]" }
            let entries = mirror.children.map { entry -> String in
                let pair = Array(Mirror(reflecting: entry.value).children)
                return inner + render(pair[0].value, indent: inner) + ": " + render(pair[1].value, indent: inner)
            }
            return "[\n" + entries.sorted().joined(separator: "\n") + "\n\(indent)]"
        case .struct, .class, .tuple:
            let name = String(describing: mirror.subjectType)
            if mirror.children.isEmpty { return "\(name)()" }
            let fields = mirror.children.enumerated().map { index, child in
                // A proxy's credentials never reach a snapshot: that they were given is recorded.
                let secret = ["username", "password"].contains(child.label) && !Mirror(reflecting: child.value).children.isEmpty
                return inner + (child.label ?? ".\(index)") + ": " + (secret ? "<given>" : render(child.value, indent: inner))
            }
            return "\(name)(\n" + fields.joined(separator: "\n") + "\n\(indent))"
        case .enum:
            guard let payload = mirror.children.first else { return ".\(value)" }
            return ".\(payload.label ?? "?")(" + render(payload.value, indent: indent) + ")"
        default:
            return String(reflecting: value)
        }
    }
}
