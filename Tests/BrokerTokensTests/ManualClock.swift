import Foundation

@testable import BrokerPOSIX
@testable import BrokerTokens

/// Virtual time for the token modules: it stands still until a test advances it, and every
/// sleep whose deadline that passes returns. A test of a 30-minute token's refresh, a backoff
/// schedule or a key probe takes as long as its upstream calls, not as long as the schedule.
final class ManualClock: Sendable {
    private struct Sleeper {
        var deadline: ContinuousClock.Instant
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var elapsed: Duration = .zero
        var sleepers: [UInt64: Sleeper] = [:]
        var next: UInt64 = 0
    }

    private let startInstant = ContinuousClock.now
    private let startDate = Date()
    // A pthread mutex (ConditionLock), which the thread sanitizer sees; it does not see the futex under
    // Swift's `Mutex` on Linux, and reports its users as racing.
    private let state = ConditionLock(State())

    /// The clock the token modules are given.
    var clock: TokenClock {
        TokenClock(now: { self.now }, date: { self.date }, sleep: { try await self.sleep(until: $0) })
    }

    var now: ContinuousClock.Instant { startInstant + state.withLock { $0.elapsed } }
    var date: Date { startDate.addingTimeInterval(state.withLock { $0.elapsed }.seconds) }

    /// How many tasks sleep on it now.
    var sleeping: Int { state.withLock { $0.sleepers.count } }

    /// Moves time on by `duration`: every sleep due by then returns.
    func advance(by duration: Duration) {
        let due = state.withLock { state -> [CheckedContinuation<Void, any Error>] in
            state.elapsed += duration
            let now = startInstant + state.elapsed
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for id in due.keys { state.sleepers.removeValue(forKey: id) }
            return due.values.map(\.continuation)
        }
        for continuation in due { continuation.resume() }
    }

    private func sleep(until deadline: ContinuousClock.Instant) async throws {
        let id = state.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = state.withLock { state -> Bool in
                    if deadline <= startInstant + state.elapsed || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}

extension Duration {
    /// In seconds, as a `TimeInterval`.
    var seconds: TimeInterval {
        TimeInterval(components.seconds) + TimeInterval(components.attoseconds) / 1e18
    }
}

/// Waits (in real time, at most `limit`) until `condition` holds: for what virtual time sets off
/// but real work ends, an upstream call to the in-process emulator.
func eventually(within limit: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let end = ContinuousClock.now + limit
    while ContinuousClock.now < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(2))
    }
    return try await condition()
}
