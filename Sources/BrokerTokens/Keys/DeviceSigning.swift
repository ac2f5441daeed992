import BrokerCrypto
import NIOPosix

/// Where grants signed by a key in a device (a TPM) are signed: one thread of its own. A TPM
/// signs in tens to hundreds of milliseconds and runs one command at a time, so its signatures
/// queue here rather than hold threads of Swift's concurrency pool, which serve every request.
enum DeviceSigning {
    private static let thread: NIOThreadPool = {
        // Lives as long as the process, as the device's keys do.
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        return pool
    }()

    /// Runs `sign` (or another operation of the device) on the device's thread if `key` is
    /// held by a device, else where it is.
    static func run<T: Sendable>(for key: RSAPrivateKey?, _ sign: @escaping @Sendable () throws -> T) async throws -> T {
        guard key?.provider != nil else { return try sign() }
        return try await thread.runIfActive(sign)
    }
}
