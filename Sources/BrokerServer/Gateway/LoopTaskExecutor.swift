import NIOCore

/// Runs a task's jobs on one NIO event loop: the gateway's call for a connection runs where the
/// connection lives, and so do its connection to Altinn (the forwarding client keeps its
/// connections on the loop it is called from) and the writes of the answer. Measured, before the
/// gateway had a client of its own: without it, each call crossed threads six times (event loop,
/// the concurrency pool, the client's loop, and back), and waking threads took more of the
/// daemon's time than the call itself.
///
/// Only code that never blocks runs on it: the gateway's checks, the forwarding client, the writes.
final class LoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
