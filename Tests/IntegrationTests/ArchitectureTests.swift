import Foundation
import Testing

/// docs/architecture.md's module table against the code: a module added, removed or importing
/// something new fails here until the table says so.
@Suite("docs/architecture.md: the module table is what the code imports")
struct ArchitectureTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The system's own modules, left out of the table.
    static let system: Set<String> = ["Glibc", "Dispatch", "Synchronization", "_Concurrency"]

    /// Module name → imports, from the table under `## Modules`.
    static func documented() throws -> [String: Set<String>] {
        let text = try String(contentsOf: repository.appendingPathComponent("docs/architecture.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "## Modules").dropFirst().first)
        var table: [String: Set<String>] = [:]
        for line in section.split(separator: "\n") {
            guard line.hasPrefix("| `") else {
                if !table.isEmpty && !line.hasPrefix("|") { break }
                continue
            }
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            let name = cells[1].trimmingCharacters(in: CharacterSet(charactersIn: "`"))
            let imports = cells[cells.count - 2]
            table[name] = imports == "—" ? [] : Set(imports.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        }
        return table
    }

    /// Module name → what its Swift files import.
    static func actual() throws -> [String: Set<String>] {
        let sources = repository.appendingPathComponent("Sources")
        let pattern = try Regex(#"^(?:@\w+(?:\([^)]*\))? )*(?:package |public |internal )?import (\w+)"#).anchorsMatchLineEndings()
        var result: [String: Set<String>] = [:]
        for module in try FileManager.default.contentsOfDirectory(atPath: sources.path) {
            var imports: Set<String> = []
            let enumerator = FileManager.default.enumerator(atPath: sources.appendingPathComponent(module).path)
            while let file = enumerator?.nextObject() as? String {
                guard file.hasSuffix(".swift") else { continue }
                let text = try String(contentsOf: sources.appendingPathComponent(module).appendingPathComponent(file), encoding: .utf8)
                for match in text.matches(of: pattern) { imports.insert(String(match.output[1].substring ?? "")) }
            }
            result[module] = imports.subtracting(system)
        }
        return result
    }

    @Test("every module in Sources is in the table, with exactly the imports its files have")
    func tableMatchesImports() throws {
        let documented = try Self.documented()
        let actual = try Self.actual()
        #expect(Set(documented.keys) == Set(actual.keys), "modules in the table vs in Sources/")
        for (module, imports) in actual.sorted(by: { $0.key < $1.key }) {
            let listed = documented[module] ?? []
            #expect(
                imports == listed,
                "\(module): imported but not in the table: \(imports.subtracting(listed).sorted()); in the table but not imported: \(listed.subtracting(imports).sorted())"
            )
        }
    }

    @Test("only BrokerUpstream among the daemon's modules reaches NIOSSL (the way out), and nothing imports a general HTTP client")
    func upstreamIsTheOnlyWayOut() throws {
        let actual = try Self.actual()
        let outside = ["NIOSSL"]
        for (module, imports) in actual where module != "BrokerUpstream" && module != "MaskinportenEmulator" {
            #expect(imports.isDisjoint(with: outside), "\(module) imports \(imports.intersection(outside).sorted())")
        }
        for (module, imports) in actual {
            #expect(!imports.contains("AsyncHTTPClient"), "\(module): the upstream calls go out on BrokerUpstream's own client")
        }
    }
}
