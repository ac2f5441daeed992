import BrokerTestSupport
import Foundation
import Testing

/// The files in systemd/, checked by systemd's own tools.
@Suite("systemd units", .sharedKeys)
struct SystemdUnitTests {
    static let unitDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../systemd").standardizedFileURL

    /// The units with ExecStart pointing at the built daemon executable (systemd-analyze verify checks
    /// that it exists).
    func installedCopy() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory(prefix: "units")
        for name in ["maskinporten-broker.service", "maskinporten-broker.socket"] {
            let text = try String(contentsOf: Self.unitDirectory.appendingPathComponent(name), encoding: .utf8)
            try directory.write(name, text.replacingOccurrences(of: "/usr/bin/maskinporten-brokerd", with: try BrokerExecutable.daemonPath), mode: 0o644)
        }
        return directory
    }

    @Test("systemd-analyze verify accepts the service and the socket")
    func verify() async throws {
        let directory = try installedCopy()
        let result = try await Command.run(
            "systemd-analyze", ["verify", "maskinporten-broker.service", "maskinporten-broker.socket"], currentDirectory: directory.url)
        #expect(result.status == 0, "\(result.output) \(result.errorOutput)")
        #expect(!result.errorOutput.contains("Unknown"), "\(result.errorOutput)")
    }

    @Test("systemd-analyze security rates the service 1.5 or lower")
    func securityRating() async throws {
        let directory = try installedCopy()
        let result = try await Command.run("systemd-analyze", ["security", "--offline=true", "maskinporten-broker.service"], currentDirectory: directory.url)
        let line = try #require(result.output.split(separator: "\n").last { $0.contains("Overall exposure level") })
        let rating = try #require(line.split(separator: " ").compactMap { Double($0) }.first)
        #expect(rating <= 1.5, "\(line)")
    }

    @Test("the service is Type=notify with watchdog, reload, credentials and its own user; the socket is 0660 for group maskinporten")
    func contents() throws {
        let service = try String(contentsOf: Self.unitDirectory.appendingPathComponent("maskinporten-broker.service"), encoding: .utf8)
        for line in [
            "Type=notify", "WatchdogSec=", "ExecReload=/bin/sh -c 'kill -HUP $$MAINPID'", "User=maskinporten-broker",
            // A configuration error is final: serve --strict exits 78, which is not restarted; a
            // reload checks first, so that a refused one fails visibly; other failures stop
            // after 5 starts in 30 s (RestartSec=2s would never reach systemd's 5 in 10 s).
            "ExecStart=/usr/bin/maskinporten-brokerd serve --strict --config /etc/maskinporten-broker/broker.yaml", "RestartPreventExitStatus=78",
            "ExecReload=+/usr/bin/env -u CREDENTIALS_DIRECTORY /usr/bin/maskinporten-brokerd check-config --quiet --config /etc/maskinporten-broker/broker.yaml",
            "StartLimitIntervalSec=30s", "StartLimitBurst=5",
            "ConfigurationDirectory=maskinporten-broker", "LoadCredential=notifications-jwk:", "NoNewPrivileges=yes",
        ] {
            #expect(service.contains(line), "\(line)")
        }
        #expect(!service.contains("PrivateUsers=yes"), "PrivateUsers would hide callers' uids from SO_PEERCRED")
        let settings = service.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(!settings.contains { $0.hasPrefix("RuntimeDirectory") }, "a RuntimeDirectory would take the socket from its group at every start")
        #expect(!settings.contains { $0.contains("/bin/kill") }, "procps is not on a minimal system")
        #expect(!settings.contains { $0.hasPrefix("ExecStartPre=") }, "systemd applies RestartPreventExitStatus= to the main process only")
        let reloads = settings.filter { $0.hasPrefix("ExecReload=") }
        #expect(reloads.count == 2 && reloads[0].contains("check-config"), "the check runs before the signal: \(reloads)")
        #expect(settings.contains("SystemCallFilter=setpriority") && settings.contains("LimitNICE=-4"), "libdispatch may set its threads' nice values")
        let socket = try String(contentsOf: Self.unitDirectory.appendingPathComponent("maskinporten-broker.socket"), encoding: .utf8)
        for line in ["ListenStream=/run/maskinporten-broker/broker.sock", "SocketMode=0660", "SocketGroup=maskinporten"] {
            #expect(socket.contains(line), "\(line)")
        }
    }

    @Test("sysusers.d makes the daemon's user and the clients' group; tmpfiles.d makes private configuration directories")
    func sysusersAndTmpfiles() async throws {
        let root = try TemporaryDirectory(prefix: "root")
        try FileManager.default.createDirectory(atPath: root.path("etc"), withIntermediateDirectories: true)
        let sysusers = try await Command.run(
            "systemd-sysusers", ["--root=\(root.url.path)", Self.unitDirectory.appendingPathComponent("sysusers.d/maskinporten-broker.conf").path])
        #expect(sysusers.status == 0, "\(sysusers.errorOutput)")
        let passwd = try String(contentsOfFile: root.path("etc/passwd"), encoding: .utf8)
        let group = try String(contentsOfFile: root.path("etc/group"), encoding: .utf8)
        #expect(passwd.contains("maskinporten-broker:x:"))
        #expect(passwd.contains(":/usr/sbin/nologin"))
        #expect(group.contains("\nmaskinporten:x:") || group.hasPrefix("maskinporten:x:"))
        let tmpfiles = try await Command.run(
            "systemd-tmpfiles", ["--root=\(root.url.path)", "--create", Self.unitDirectory.appendingPathComponent("tmpfiles.d/maskinporten-broker.conf").path])
        #expect(tmpfiles.status == 0, "\(tmpfiles.errorOutput)")
        #expect(try FileManager.default.attributesOfItem(atPath: root.path("etc/maskinporten-broker"))[.posixPermissions] as? Int == 0o750)
        #expect(try FileManager.default.attributesOfItem(atPath: root.path("etc/maskinporten-broker/credentials"))[.posixPermissions] as? Int == 0o700)
    }
}
