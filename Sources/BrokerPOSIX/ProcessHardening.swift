import CSystemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Keeps key material out of core dumps and away from other processes of the same user:
/// `PR_SET_DUMPABLE` 0 (no core dumps, no ptrace by same-uid processes, /proc files root-owned)
/// and a zero core-size limit.
package enum ProcessHardening {
    /// Applies both; returns what could not be applied (for a warning), empty when all held.
    @discardableResult
    package static func apply() -> [String] {
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

    /// Raises the soft limit on open files to the hard limit (at most 65,536), so that the
    /// connection cap is reached before the descriptor limit. Returns the soft limit in force.
    @discardableResult
    package static func raiseOpenFileLimit() -> UInt64 {
        var limit = rlimit()
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        guard getrlimit(resource, &limit) == 0 else { return 0 }
        let wanted = min(limit.rlim_max, 65_536)
        if limit.rlim_cur < wanted {
            var raised = rlimit(rlim_cur: wanted, rlim_max: limit.rlim_max)
            if setrlimit(resource, &raised) == 0 { return UInt64(wanted) }
        }
        return UInt64(limit.rlim_cur)
    }

    /// Whether the process is currently dumpable.
    package static var isDumpable: Bool {
        CSystemShims_getDumpable() != 0
    }
}

/// The process's memory.
package enum ProcessMemory {
    /// Hands the heap's free pages back to the system (glibc's `malloc_trim`).
    package static func releaseFree() {
        _ = CSystemShims_releaseFreeHeap()
    }
}
