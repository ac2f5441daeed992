#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A failed system call: the function, errno and its text.
package struct SystemError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The call that failed.
    package let function: String
    /// `errno` after the call.
    package let errno: Int32

    /// Captures the current `errno`.
    package init(_ function: String) {
        self.function = function
        self.errno = Glibc.errno
    }

    /// An error with a given `errno`.
    package init(_ function: String, errno: Int32) {
        self.function = function
        self.errno = errno
    }

    package var description: String {
        "\(function): \(String(cString: strerror(errno)))"
    }
}

/// Calls `body` until it does not fail with EINTR; a -1 result throws with errno.
@discardableResult
func retryingEINTR<T: BinaryInteger>(_ function: String, _ body: () -> T) throws -> T {
    while true {
        let result = body()
        if result == -1 {
            if errno == EINTR { continue }
            throw SystemError(function)
        }
        return result
    }
}
