#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A value guarded by a pthread mutex, with a condition variable to wait for it to change.
///
/// For a thread of our own that must sleep until other threads hand it work (the log writer):
/// Swift's `Mutex` and NIO's locks have no condition variable, and a thread outside Swift
/// concurrency cannot await. The condition waits on the monotonic clock, so setting the wall
/// clock neither cuts a wait short nor stretches it.
///
/// Also the lock for state that the thread sanitizer must see guarded: it follows pthread's
/// mutexes, where it took the standard library's `Mutex` on Linux for no lock at all.
package final class ConditionLock<Value>: @unchecked Sendable {
    // @unchecked: `value` is only touched with `mutex` held; the pthread objects are owned here.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    /// `recursive`: the thread holding the lock may take it again (not for `wait`).
    package init(_ value: Value, recursive: Bool = false) {
        self.value = value
        mutex = .allocate(capacity: 1)
        var mutexAttributes = pthread_mutexattr_t()
        pthread_mutexattr_init(&mutexAttributes)
        if recursive { pthread_mutexattr_settype(&mutexAttributes, Int32(PTHREAD_MUTEX_RECURSIVE)) }
        pthread_mutex_init(mutex, &mutexAttributes)
        pthread_mutexattr_destroy(&mutexAttributes)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        condition.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// Runs `body` on the value with the lock held.
    package func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Runs `body` with the lock held, without touching the value: a recursive lock's holder may
    /// come back in (`withLock` would be a second access to the value while the first lasts).
    package func locked<Result>(_ body: () throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits until `ready` holds for the value or `timeout` has passed (nil: no limit), then runs
    /// `body` with the lock still held; its second argument says whether `ready` held.
    func wait<Result>(until ready: (Value) -> Bool, timeout: Duration? = nil, then body: (inout Value, Bool) throws -> Result) rethrows -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        let deadline = timeout.map(Self.deadline(after:))
        while !ready(value) {
            if var deadline {
                if pthread_cond_timedwait(condition, mutex, &deadline) == ETIMEDOUT { break }
            } else {
                pthread_cond_wait(condition, mutex)
            }
        }
        return try body(&value, ready(value))
    }

    /// Wakes every waiter to look at the value again.
    func broadcast() {
        pthread_cond_broadcast(condition)
    }

    private static func deadline(after timeout: Duration) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let (seconds, attoseconds) = timeout.components
        var nanoseconds = Int(now.tv_nsec) + Int(attoseconds / 1_000_000_000)
        var wholeSeconds = Int(now.tv_sec) + Int(seconds)
        if nanoseconds >= 1_000_000_000 {
            nanoseconds -= 1_000_000_000
            wholeSeconds += 1
        }
        return timespec(tv_sec: wholeSeconds, tv_nsec: nanoseconds)
    }
}
