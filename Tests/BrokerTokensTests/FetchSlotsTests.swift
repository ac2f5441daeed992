import NIOConcurrencyHelpers
import Testing

@testable import BrokerUpstream

@Suite("Fetch slots")
struct FetchSlotsTests {
    @Test("never more than the slots run at once; every fetch runs")
    func bounded() async throws {
        let slots = FetchSlots(3)
        let counts = NIOLockedValueBox((running: 0, peak: 0, done: 0))
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<40 {
                group.addTask {
                    try await slots.run { () async throws(TokenError) -> Int in
                        counts.withLockedValue {
                            $0.running += 1
                            $0.peak = max($0.peak, $0.running)
                        }
                        try? await Task.sleep(for: .milliseconds(5))
                        counts.withLockedValue {
                            $0.running -= 1
                            $0.done += 1
                        }
                        return index
                    }
                }
            }
            var seen = Set<Int>()
            for try await index in group { seen.insert(index) }
            #expect(seen.count == 40)
        }
        #expect(counts.withLockedValue { $0.peak } == 3)
        #expect(counts.withLockedValue { $0.done } == 40)
    }

    @Test("a failing fetch gives its slot back")
    func failureReleases() async throws {
        let slots = FetchSlots(1)
        for _ in 0..<3 {
            await #expect(throws: TokenError.self) {
                try await slots.run { () async throws(TokenError) -> Int in throw TokenError(.unavailable, "down") }
            }
        }
        let value = try await slots.run { () async throws(TokenError) -> Int in 7 }
        #expect(value == 7)
    }

    @Test("a fetch cancelled while it waits does not run and gets unavailable; the queue moves on")
    func cancelledWaiter() async throws {
        let slots = FetchSlots(1)
        let gate = AsyncStream<Void>.makeStream()
        let holder = Task {
            try await slots.run { () async throws(TokenError) -> Int in
                for await _ in gate.stream { break }
                return 1
            }
        }
        let waiter = Task {
            try await slots.run { () async throws(TokenError) -> Int in
                Issue.record("a cancelled waiter ran")
                return 2
            }
        }
        while await slots.waiting == 0 { await Task.yield() }
        waiter.cancel()
        let error = await #expect(throws: TokenError.self) { try await waiter.value }
        #expect(error?.kind == .unavailable)
        #expect(await slots.waiting == 0)
        gate.continuation.yield()
        #expect(try await holder.value == 1)
        #expect(try await slots.run { () async throws(TokenError) -> Int in 3 } == 3)
    }
}
