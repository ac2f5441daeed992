import Testing

@testable import BrokerUpstream

/// The sleep the daemon cancels as a rule (a call's time limit, the refresh loop's wait): it
/// lasts its time when left alone, and ends at once when its task is cancelled.
@Suite("A sleep on an event loop")
struct EventLoopSleepTests {
    @Test("it returns after its delay; cancelled, it throws CancellationError at once, not at its deadline")
    func sleepAndCancel() async throws {
        let started = ContinuousClock.now
        try await sleepOnEventLoop(for: .milliseconds(50))
        #expect(started.duration(to: .now) >= .milliseconds(50))

        let long = Task { try await sleepOnEventLoop(for: .seconds(60)) }
        try await Task.sleep(for: .milliseconds(20))
        let cancelled = ContinuousClock.now
        long.cancel()
        await #expect(throws: CancellationError.self) { try await long.value }
        #expect(cancelled.duration(to: .now) < .seconds(5))

        // Already cancelled: it does not start, and zero or less is no sleep at all.
        let early = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await sleepOnEventLoop(for: .seconds(60))
        }
        await #expect(throws: CancellationError.self) { try await early.value }
        try await sleepOnEventLoop(for: .zero)
    }
}
