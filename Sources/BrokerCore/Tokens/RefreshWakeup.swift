import NIOConcurrencyHelpers

/// Wakes the broker's one refresh loop early: a cache signals it when a fetch ends (its
/// schedule changed), and a reload when it adds caches. Signals while the loop is busy are kept,
/// so none is lost between the loop's scan and its wait, and the loop learns which caches
/// signalled: it asks only those (and the ones due) for their next time, not all of them.
public final class RefreshWakeup: Sendable {
    private struct State {
        var pending = false
        var changed: Set<ObjectIdentifier> = []
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Wakes the waiting loop, or the next wait if none is waiting; `changed` names the cache
    /// whose schedule changed.
    public func signal(changed: ObjectIdentifier? = nil) {
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
    func wait(until deadline: ContinuousClock.Instant) async {
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { self?.signal() }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLockedValue { state -> Bool in
                    if state.pending {
                        state.pending = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            signal()
        }
        timer.cancel()
    }
}
