import NIOCore
import NIOPosix

/// Returns after `delay`, or throws `CancellationError` once the task is cancelled: a task
/// scheduled on an event loop, where `Task.sleep` would do but for one thing. A cancelled
/// `Task.sleep` keeps its timer, and the sleeping task's memory, until the deadline would have
/// come. The daemon cancels sleeps all the time (a call's time limit when the call ends, the
/// refresh loop's wait when a fetch ends), and with a thousand profiles the timers left behind
/// by their first fetches held over a megabyte for minutes. A cancelled scheduled task is
/// removed at once.
package func sleepOnEventLoop(for delay: Duration) async throws {
    guard delay > .zero else { return try Task.checkCancellation() }
    let scheduled = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: TimeAmount(delay)) {}
    try await withTaskCancellationHandler {
        do {
            try await scheduled.futureResult.get()
        } catch {
            throw CancellationError()
        }
    } onCancel: {
        scheduled.cancel()
    }
}
