/// At most `count` token fetches under way at once towards one upstream: the rest wait their
/// turn, first come first served, before they sign their grant (so a grant never ages in a
/// queue). Keeps a start with a thousand profiles from opening a thousand requests to
/// Maskinporten at once, each with its own timeout running while it queues for a connection.
package actor FetchSlots {
    private var free: Int
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
    private var nextID: UInt64 = 0

    /// Slots for `count` fetches at once.
    package init(_ count: Int) {
        free = max(1, count)
    }

    /// Runs `body` holding a slot. A task cancelled while it waits gets `unavailable` without
    /// running `body`.
    package func run<T: Sendable>(_ body: @Sendable () async throws(TokenError) -> T) async throws(TokenError) -> T {
        guard await acquire() else { throw TokenError(.unavailable, "stopped while waiting for its turn to fetch") }
        let result: Result<T, TokenError>
        do throws(TokenError) {
            result = .success(try await body())
        } catch {
            result = .failure(error)
        }
        release()
        return try result.get()
    }

    /// Fetches waiting for a slot.
    package var waiting: Int { waiters.count }

    private func acquire() async -> Bool {
        if free > 0 {
            free -= 1
            return true
        }
        let id = nextID
        nextID += 1
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if Task.isCancelled {
                    continuation.resume(returning: false)
                } else {
                    waiters.append((id, continuation))
                }
            }
        } onCancel: {
            Task { await self.cancelWaiter(id) }
        }
    }

    private func cancelWaiter(_ id: UInt64) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        waiters.remove(at: index).continuation.resume(returning: false)
    }

    private func release() {
        if waiters.isEmpty {
            free += 1
        } else {
            waiters.removeFirst().continuation.resume(returning: true)
        }
    }
}
