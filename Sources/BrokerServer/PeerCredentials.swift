import FoundationEssentials
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Who is on the other end of a Unix socket connection, from `SO_PEERCRED` at accept time.
package struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
    /// The peer's process id.
    package var pid: Int32
    /// The peer's effective user id.
    package var uid: UInt32
    /// The peer's effective group id.
    package var gid: UInt32

    /// Credentials with the given ids.
    package init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// The peer process's supplementary groups, read from `/proc/<pid>/status`; empty if the
    /// process is gone.
    package func supplementaryGroups() -> [UInt32] {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") })
        else { return [] }
        return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" }).compactMap { UInt32($0) }
    }

    /// The peer's executable, from `/proc/<pid>/exe`, for audit lines: read again after a
    /// second, so that a client calling the gateway thousands of times a second (one audit line
    /// each) costs one `readlink` a second, not one a call.
    package func executable() -> String? {
        let now = NIODeadline.now()
        if let known = Self.recent.withLockedValue({ $0[self] }), known.read + .seconds(1) > now { return known.name }
        let name = readExecutable()
        Self.recent.withLockedValue { recent in
            if recent.count >= 1024 { recent.removeAll(keepingCapacity: true) }
            recent[self] = (name, now)
        }
        return name
    }

    private static let recent = NIOLockedValueBox<[PeerCredentials: (name: String?, read: NIODeadline)]>([:])

    private func readExecutable() -> String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package var description: String { "pid=\(pid) uid=\(uid) gid=\(gid)" }
}
