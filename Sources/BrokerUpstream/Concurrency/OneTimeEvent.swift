import BrokerPOSIX

/// Something that happens once (the first fetches have ended, the last connection has closed),
/// which tasks wait for, each for at most a given time. Waiting is signalled, never polled.
package final class OneTimeEvent: Sendable {
    private struct State {
        var happened = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = ConditionLock(State())

    /// An event that has not happened yet.
    package init() {}

    /// Whether it has happened.
    package var hasHappened: Bool { state.withLock { $0.happened } }

    /// It happens: every waiter returns, and later waits return at once.
    package func signal() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.happened = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when the event has happened (true) or `limit` has passed or the task is cancelled
    /// (false).
    package func wait(within limit: Duration) async -> Bool {
        await withTimeLimit(limit) { await self.wait() } ?? false
    }

    /// Returns when the event has happened (true) or the task is cancelled (false).
    package func wait() async -> Bool {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.happened || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
        return hasHappened
    }
}
