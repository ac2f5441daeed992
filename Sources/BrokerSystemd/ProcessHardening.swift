#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSystemShims

/// Keeps key material out of core dumps and away from other processes of the same user:
/// `PR_SET_DUMPABLE` 0 (no core dumps, no ptrace by same-uid processes, /proc files root-owned)
/// and a zero core-size limit.
public enum ProcessHardening {
    /// Applies both; returns what could not be applied (for a warning), empty when all held.
    @discardableResult
    public static func apply() -> [String] {
        var failures: [String] = []
        if CSystemShims_setDumpable(0) != 0 {
            failures.append("prctl(PR_SET_DUMPABLE, 0): \(SystemError("prctl"))")
        }
        var none = rlimit(rlim_cur: 0, rlim_max: 0)
        if setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &none) != 0 {
            // Under a system-call filter without @resources systemd's LimitCORE=0 does this.
            failures.append("setrlimit(RLIMIT_CORE, 0): \(SystemError("setrlimit"))")
        }
        return failures
    }

    /// Whether the process is currently dumpable.
    public static var isDumpable: Bool {
        CSystemShims_getDumpable() != 0
    }
}
