/// What `operation` returns, or nil once `limit` has passed, whichever comes first: the two race
/// in a task group and the loser is cancelled. (A task group ends with its last child, so an
/// operation that ignores cancellation holds the answer until it returns.)
package func withTimeLimit<Result: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async -> Result) async -> Result? {
    await withTaskGroup(of: Result?.self) { group in
        group.addTask { await operation() }
        group.addTask {
            try? await Task.sleep(for: limit)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
