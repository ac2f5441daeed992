/// What `operation` returns, or nil once `limit` has passed, whichever comes first: the two race
/// in a task group and the loser is cancelled. (A task group ends with its last child, so an
/// operation that ignores cancellation holds the answer until it returns.) `sleep` is how the
/// limit is waited for: a caller that sets many limits passes one whose cancelled waits end at
/// once (`Task.sleep`'s keep their timers until the limit would have passed).
package func withTimeLimit<Result: Sendable>(
    _ limit: Duration, sleep: @escaping @Sendable (Duration) async throws -> Void = { try await Task.sleep(for: $0) },
    _ operation: @escaping @Sendable () async -> Result
) async -> Result? {
    await withTaskGroup(of: Result?.self) { group in
        group.addTask { await operation() }
        group.addTask {
            try? await sleep(limit)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
