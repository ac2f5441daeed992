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
    /// gdb show it), with a stack of `stackSize` bytes (nil: the system's default, 8 MiB).
    package static func detach(name: String, stackSize: Int? = nil, _ body: @escaping @Sendable () -> Void) throws {
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
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if let stackSize { pthread_attr_setstacksize(&attributes, stackSize) }
        let result = pthread_create(
            &thread, &attributes,
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
