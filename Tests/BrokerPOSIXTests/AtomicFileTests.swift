import BrokerTestSupport
import Foundation
import Testing

@testable import BrokerPOSIX

@Suite("Files written whole or not at all")
struct AtomicFileTests {
    @Test("a new file is 0600 and never put over an existing one; replacing replaces; nothing is left behind, here or in /tmp")
    func writes() throws {
        let directory = try TemporaryDirectory(prefix: "atomic")
        let path = directory.path("state.json")
        let before = try Self.leftovers()
        try AtomicFile.write(Array("one\n".utf8), to: path, replacing: false)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "one\n")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        #expect(throws: AtomicFile.Failure.self) { try AtomicFile.write(Array("two\n".utf8), to: path, replacing: false) }
        do {
            try AtomicFile.write(Array("two\n".utf8), to: path, replacing: false)
        } catch {
            #expect(error.exists && error.description == "\(path) exists")
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "one\n")
        try AtomicFile.write(Array("three\n".utf8), to: path, replacing: true)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "three\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.url.path) == ["state.json"])
        #expect(try Self.leftovers() == before)
    }

    @Test("a directory that cannot be written is named, with the system's reason")
    func unwritable() {
        do {
            try AtomicFile.write([], to: "/nonexistent/dir/file", replacing: true)
            Issue.record("written into a directory that does not exist")
        } catch {
            #expect(!error.exists)
            #expect(error.description == "cannot create a file in /nonexistent/dir: No such file or directory")
        }
    }

    /// Foundation's atomic writes leave these in /tmp on Linux.
    private static func leftovers() throws -> Set<String> {
        Set(try FileManager.default.contentsOfDirectory(atPath: "/tmp").filter { $0.hasPrefix("TemporaryDirectory.") })
    }
}
