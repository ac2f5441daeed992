import CSystemShims

#if canImport(Glibc)
    import Glibc
#endif

/// File actions for the tests' children, apart from `RunningProcess` because importing
/// CSystemShims beside Glibc in one file makes the system types ambiguous there.
enum SpawnActions {
    /// The child closes every descriptor but its standard streams.
    static func closeInherited(_ actions: inout posix_spawn_file_actions_t) {
        _ = CSystemShims_spawnClosesFrom(&actions, 3)
    }
}
