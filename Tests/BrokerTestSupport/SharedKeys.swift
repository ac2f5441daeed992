package import Foundation

#if canImport(Testing)
    package import Testing
#endif

/// The keys many suites share, made once per test process by `openssl` on a thread of its own.
/// A static key made on first use would be made on Swift's cooperative pool (two threads on a
/// two-core machine), and every thread touching it would wait there while `openssl` works: the
/// whole process stalled for seconds, and the in-process emulator then refused grants as older
/// than its 10-second window.
package enum SharedKeys {
    /// The keys, by name, and their sizes (`ec`: a P-256 key).
    package static let sizes: [String: Int] = [
        "rsa2048": 2048, "other2048": 2048, "rsa1024": 1024, "ec": 256, "harness": 2048, "emulator": 2048, "stranger": 2048,
    ]

    private static let store = Store()

    /// The key `name`: made already when the suite has the `.sharedKeys` trait or its harness
    /// called `prepare`; made here, on the calling thread, otherwise.
    package static func key(_ name: String) -> TestKey {
        if let key = store.made(name) { return key }
        let key = try! make(name)
        return store.keep(name, key)
    }

    /// Makes the shared keys not made yet, one after another on a thread of their own, once for
    /// all callers, who wait without holding a thread of the pool.
    package static func prepare() async throws {
        try await store.preparation().value
    }

    fileprivate static func makeAll() throws {
        for name in sizes.keys.sorted() where store.made(name) == nil {
            _ = store.keep(name, try make(name))
        }
    }

    private static func make(_ name: String) throws -> TestKey {
        guard let bits = sizes[name] else { throw TestSupportError("no shared key named \(name)") }
        return name == "ec" ? try TestKey.ec() : try TestKey.rsa(bits: bits)
    }

    /// The keys made so far (the first one kept for a name wins), and the one preparation.
    private final class Store: @unchecked Sendable {
        private let lock = NSLock()
        private var keys: [String: TestKey] = [:]
        private var running: Task<Void, any Error>?

        func made(_ name: String) -> TestKey? { lock.withLock { keys[name] } }

        func keep(_ name: String, _ key: TestKey) -> TestKey {
            lock.withLock {
                if let kept = keys[name] { return kept }
                keys[name] = key
                return key
            }
        }

        func preparation() -> Task<Void, any Error> {
            lock.withLock {
                if let running { return running }
                let task = Task {
                    try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                        Thread.detachNewThread { continuation.resume(with: Result { try SharedKeys.makeAll() }) }
                    }
                }
                running = task
                return task
            }
        }
    }
}

#if canImport(Testing)
    /// A suite trait: the suite's tests start once the shared keys are made (`SharedKeys.prepare`).
    package struct SharedKeysTrait: SuiteTrait, TestScoping {
        package var isRecursive: Bool { false }

        package func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
            try await SharedKeys.prepare()
            try await function()
        }
    }

    extension Trait where Self == SharedKeysTrait {
        /// The shared keys are made before the suite's tests run, off the cooperative pool.
        package static var sharedKeys: Self { SharedKeysTrait() }
    }
#endif
