import NIOConcurrencyHelpers
import NIOCore

/// Keeps at most `limit` connections open, whichever side serves them: when one more arrives, the
/// oldest is closed, so a flood of idle or slow connections cannot lock out the clients that come
/// after it. Counts the open ones.
final class ConnectionRegistry: Sendable {
    /// Who serves a connection, and so who can close it.
    enum Owner: Sendable {
        /// A fast-path loop: only its thread touches the descriptor, so it is asked to close it.
        case fast(FastLoopControl)
        /// A NIO channel (a connection the fast path handed over).
        case channel(any Channel)

        func close(id: UInt64) {
            switch self {
            case .fast(let loop): loop.evict(id)
            case .channel(let channel): channel.close(promise: nil)
            }
        }
    }

    private struct State {
        var nextID: UInt64 = 1
        /// Open connections, oldest first.
        var open: [(id: UInt64, owner: Owner)] = []
        /// Resumed once no NIO channel is open (`channelsClosed`).
        var waiters: [CheckedContinuation<Void, Never>] = []
        /// `channelsClosed` stopped waiting: later waiters return at once.
        var gaveUp = false

        var hasChannels: Bool { open.contains { $0.owner.isChannel } }
    }

    private let limit: Int
    private let metrics: ServerMetrics
    private let state = NIOLockedValueBox(State())

    init(limit: Int, metrics: ServerMetrics) {
        self.limit = limit
        self.metrics = metrics
    }

    /// Records a new connection served by `owner` and returns its id, closing the oldest
    /// connection if the limit is reached.
    func opened(by owner: Owner) -> UInt64 {
        let (id, evicted) = state.withLockedValue { state in
            let id = state.nextID
            state.nextID += 1
            let oldest = state.open.count >= limit ? state.open.removeFirst() : nil
            state.open.append((id, owner))
            return (id, oldest)
        }
        if let evicted {
            metrics.connectionRefused()
            evicted.owner.close(id: evicted.id)
        }
        metrics.connectionOpened()
        return id
    }

    /// Connection `id` is now served by `channel`; it is forgotten when the channel closes.
    func moved(_ id: UInt64, to channel: any Channel) {
        state.withLockedValue { state in
            if let index = state.open.lastIndex(where: { $0.id == id }) { state.open[index].owner = .channel(channel) }
        }
        channel.closeFuture.whenComplete { _ in self.closed(id) }
    }

    /// Connection `id` is closed (evicted or not: each connection is reported once).
    func closed(_ id: UInt64) {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            if let index = state.open.lastIndex(where: { $0.id == id }) { state.open.remove(at: index) }
            guard !state.waiters.isEmpty, !state.hasChannels else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        metrics.connectionClosed()
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no connection is served by NIO any more, or after `limit`; true when they
    /// all closed. Shutdown waits on this: each closing channel reports itself (`moved`), so
    /// nothing polls. (NIO's `ServerQuiescingHelper` cannot: it follows the children of a server
    /// channel, and these channels were accepted by the fast path and adopted one by one.)
    func channelsClosed(within limit: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let done = self.state.withLockedValue { state -> Bool in
                        if !state.hasChannels || state.gaveUp { return true }
                        state.waiters.append(continuation)
                        return false
                    }
                    if done { continuation.resume() }
                }
                return true
            }
            group.addTask {
                try? await Task.sleep(for: limit)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            // The waiter, if still waiting, is resumed so that the group can end.
            let waiters = self.state.withLockedValue { state in
                state.gaveUp = true
                defer { state.waiters = [] }
                return state.waiters
            }
            for waiter in waiters { waiter.resume() }
            return first
        }
    }

    /// The open connections NIO serves (to quiesce at shutdown).
    var channels: [any Channel] {
        state.withLockedValue { state in
            state.open.compactMap { if case .channel(let channel) = $0.owner { channel } else { nil } }
        }
    }
}

extension ConnectionRegistry.Owner {
    var isChannel: Bool {
        if case .channel = self { true } else { false }
    }
}
