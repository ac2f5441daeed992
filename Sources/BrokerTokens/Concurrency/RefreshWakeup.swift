import NIOConcurrencyHelpers

/// Wakes the broker's one refresh loop early: a cache signals it when a fetch ends (its
/// schedule changed), and a reload when it adds caches. Signals while the loop is busy are kept,
/// so none is lost between the loop's scan and its wait, and the loop learns which caches
/// signalled: it asks only those (and the ones due) for their next time, not all of them.
package final class RefreshWakeup: Sendable {
    private struct State {
        var pending = false
        var changed: Set<ObjectIdentifier> = []
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())
    private let observe: @Sendable (ObjectIdentifier?) -> Void

    /// A wakeup; `observe` sees every signal, with the cache that sent it (the broker counts
    /// the first fetches off them).
    package init(observe: @escaping @Sendable (ObjectIdentifier?) -> Void = { _ in }) {
        self.observe = observe
    }

    /// Wakes the waiting loop, or the next wait if none is waiting; `changed` names the cache
    /// whose schedule changed.
    package func signal(changed: ObjectIdentifier? = nil) {
        observe(changed)
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            if let changed { state.changed.insert(changed) }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.pending = true
            return nil
        }
        waiter?.resume()
    }

    /// The caches that signalled since the last call.
    func takeChanged() -> Set<ObjectIdentifier> {
        state.withLockedValue { state in
            defer { state.changed = [] }
            return state.changed
        }
    }

    /// Returns at `deadline`, on a signal, or when the task is cancelled, whichever comes first.
    func wait(until deadline: ContinuousClock.Instant, clock: TokenClock = .system) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForSignal() }
            group.addTask { try? await clock.sleep(deadline) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            // Only the waiting loop's own wait is ended; a signal that comes with it is kept.
            state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume()
        }
    }
}
