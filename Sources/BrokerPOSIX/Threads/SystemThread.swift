import CSystemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A detached pthread of our own, for work that must block in a system call without holding up
/// an event loop or Swift's cooperative pool (the log writer waits on its destination).
package enum SystemThread {
    /// Starts `body` on a new detached thread named `name` (at most 15 bytes, as `top -H` and
    /// gdb show it).
    package static func detach(name: String, _ body: @escaping @Sendable () -> Void) throws {
        final class Start {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        let context = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread, nil,
            { context in
                let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
                _ = CSystemShims_setThreadName(start.name)
                start.body()
                return nil
            }, context)
        guard result == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            throw SystemError("pthread_create", errno: result)
        }
        pthread_detach(thread)
    }
}
