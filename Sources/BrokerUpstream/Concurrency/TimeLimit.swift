/// What `operation` returns, or nil once `limit` has passed, whichever comes first: the two race
/// in a task group and the loser is cancelled. (A task group ends with its last child, so an
/// operation that ignores cancellation holds the answer until it returns.) The limit is waited
/// for by `sleepOnEventLoop`: it is cancelled whenever the operation wins, and a cancelled
/// `Task.sleep` would keep its timer until the limit had passed.
package func withTimeLimit<Result: Sendable>(_ limit: Duration, _ operation: @escaping @Sendable () async -> Result) async -> Result? {
    await withTaskGroup(of: Result?.self) { group in
        group.addTask { await operation() }
        group.addTask {
            try? await sleepOnEventLoop(for: limit)
            return nil
        }
        let first = await group.next() ?? nil
        group.cancelAll()
        return first
    }
}
