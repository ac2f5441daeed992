import Testing

@testable import BrokerUpstream

@Suite("OneTimeEvent: waiting signalled, not polled", .timeLimit(.minutes(1)))
struct OneTimeEventTests {
    @Test("a waiter returns when the event happens; later waits return at once")
    func signal() async {
        let event = OneTimeEvent()
        async let waited = event.wait(within: .seconds(30))
        try? await Task.sleep(for: .milliseconds(50))
        event.signal()
        // True only if the signal woke it: its limit ends with false. (No timing check: on a
        // loaded machine the woken task may wait seconds for a thread, and that is no fault.)
        #expect(await waited)
        #expect(await event.wait(within: .milliseconds(1)))
    }

    @Test("a wait gives up after its limit, and says so")
    func timeout() async {
        let event = OneTimeEvent()
        let start = ContinuousClock.now
        #expect(await event.wait(within: .milliseconds(100)) == false)
        #expect(ContinuousClock.now - start >= .milliseconds(100))
        event.signal()
        #expect(event.hasHappened)
    }

    @Test("a cancelled wait returns false at once")
    func cancelled() async {
        let event = OneTimeEvent()
        let task = Task { await event.wait() }
        try? await Task.sleep(for: .milliseconds(50))
        task.cancel()
        #expect(await task.value == false)
    }
}
