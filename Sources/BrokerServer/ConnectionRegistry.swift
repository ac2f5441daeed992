import BrokerPOSIX
import BrokerUpstream
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
        /// Shutdown waits for the last NIO channel to close (`channelsClosed`).
        var draining = false

        var hasChannels: Bool { open.contains { $0.owner.isChannel } }
    }

    private let limit: Int
    private let metrics: ServerMetrics
    private let state = NIOLockedValueBox(State())
    private let lastChannelClosed = OneTimeEvent()

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
        let drained = state.withLockedValue { state -> Bool in
            if let index = state.open.lastIndex(where: { $0.id == id }) { state.open.remove(at: index) }
            return state.draining && !state.hasChannels
        }
        metrics.connectionClosed()
        if drained { lastChannelClosed.signal() }
    }

    /// Returns once no connection is served by NIO any more, or after `limit`; true when they
    /// all closed. For shutdown, once nothing is accepted any more: each closing channel reports
    /// itself (`moved`), so nothing polls. (NIO's `ServerQuiescingHelper` cannot do it: it follows
    /// the children of a server channel, and these channels were accepted by the fast path and
    /// adopted one by one.)
    func channelsClosed(within limit: Duration) async -> Bool {
        let drained = state.withLockedValue { state -> Bool in
            state.draining = true
            return !state.hasChannels
        }
        if drained { lastChannelClosed.signal() }
        return await lastChannelClosed.wait(within: limit)
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
