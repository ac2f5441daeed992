package import BrokerConfig
package import BrokerPOSIX
package import BrokerServer
package import BrokerTokens
import BrokerUpstream
package import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
package import ServiceLifecycle
import UnixSignals

/// The daemon's parts, wired: the token broker, the socket server and the supervisor that talks
/// to systemd and reloads on SIGHUP. `services` go into one `ServiceGroup` in this order, so
/// shutdown runs the other way: stop announcing, close the socket, then stop refreshing.
package final class Daemon: Sendable {
    /// The token caches.
    package let broker: TokenBroker
    /// The socket.
    package let server: SocketServer
    /// systemd notifications, readiness, reload and watchdog.
    package let supervisor: Supervisor

    /// The TCP metrics listener, when `metrics_listen` is set.
    package let metricsListener: MetricsListener?
    /// The audit trail's count lines.
    package let auditor: Auditor
    /// Key rotation through the self-service API, for profiles with `rotation:`.
    package let rotation: KeyRotation
    /// The tokens kept in systemd's file descriptor store for the next start.
    package let tokenStore: TokenStoreKeeper

    /// The services to run, in dependency order: the auditor before the server, so that its
    /// last count lines are written once the server has stopped handing out tokens; the token
    /// store just after the broker, so that it keeps the tokens as they are when all else stopped.
    package var services: [any Service] {
        [broker, tokenStore, rotation, auditor, server] + (metricsListener.map { [$0] } ?? []) + [supervisor]
    }

    /// Builds the daemon for `loaded`, listening as `listener`.
    package init(
        configPath: String,
        loaded: LoadedConfiguration,
        listener: SocketServer.Listener,
        restoring: [StoredToken] = [],
        limits: ServerLimits = ServerLimits(),
        policy: RetryPolicy = RetryPolicy(),
        notifier: SystemdNotifier = SystemdNotifier(),
        readyTimeout: Duration = .seconds(10),
        metrics: ServerMetrics = ServerMetrics(),
        output: LineLogHandler.Output,
        logger: Logger
    ) throws {
        Self.report(loaded, logger: logger)
        let broker = try TokenBroker(
            configuration: loaded.configuration, credentials: loaded.credentials, restoring: restoring, policy: policy, logger: logger)
        TokenStoreKeeper.report(broker.restoration, logger: logger)
        tokenStore = TokenStoreKeeper(broker: broker, notifier: notifier, logger: logger)
        let state = NIOLockedValueBox(ServingState(loaded))
        let auditor = Auditor(output: output, level: logger.logLevel) { state.withLockedValue { $0.configuration.audit.summaryIntervalSeconds } }
        let reloads = AsyncStream.makeStream(of: ReloadCause.self)
        let rotation = KeyRotation(
            broker: broker, configuration: { state.withLockedValue { $0.configuration } }, policy: policy, logger: logger,
            reloadKeys: { reloads.continuation.yield(.rotation(profile: $0)) })
        let router = Router(broker: broker, state: { state.withLockedValue { $0 } }, metrics: metrics, auditor: auditor, rotation: rotation)
        let listening = AsyncStream<Void>.makeStream()
        server = SocketServer(listener: listener, router: router, limits: limits, metrics: metrics, logger: logger) {
            listening.continuation.yield()
            listening.continuation.finish()
        }
        supervisor = Supervisor(
            configPath: configPath, broker: broker, state: state, notifier: notifier, listening: listening.stream,
            readyTimeout: readyTimeout, server: server, keyFiles: loaded.keyFileContents, reloads: reloads, snapshot: { await router.snapshot() },
            logger: logger
        )
        self.rotation = rotation
        self.broker = broker
        self.auditor = auditor
        metricsListener = loaded.configuration.metricsListen.map { address in
            MetricsListener(host: address.host, port: address.port, render: { await router.metricsText() }, logger: logger)
        }
    }

    /// The socket systemd passed in (the first of `passed` that is not the token store), or the
    /// configured path: refused for the same problems `check-config` reports on `socket`, in the
    /// same words.
    package static func listener(_ loaded: LoadedConfiguration, passed: [ListenFDs.Passed], logger: Logger) throws -> SocketServer.Listener {
        if let fd = passed.first(where: { $0.name != TokenStoreKeeper.name })?.fd {
            guard ListenFDs.isListeningUnixStream(fd) else {
                throw DaemonError("the socket passed by systemd (fd \(fd)) is not a listening Unix stream socket; use ListenStream= with a path")
            }
            return SocketServer.Listener(descriptor: fd, removeOnExit: nil)
        }
        let socket = loaded.configuration.socket
        if let problem = loaded.socketProblems.first { throw problem }
        let created = UnixListener.missingDirectory(of: socket.path)
        let fd = try UnixListener.make(path: socket.path, mode: mode_t(socket.mode), group: socket.group.flatMap { Accounts.gid(of: $0) }.map { gid_t($0) })
        if let created {
            logger.notice("created the socket directory (mode 0755, owned by the daemon's user)", metadata: ["directory": "\(created)"])
        }
        return SocketServer.Listener(descriptor: fd, removeOnExit: socket.path)
    }

    /// What start-up and every reload say about a loaded configuration: each part that cannot
    /// be served and why, and the warnings `check-config` gives in the same words.
    static func report(_ loaded: LoadedConfiguration, logger: Logger) {
        for (name, problem) in loaded.allProblems {
            logger.error("cannot be served", metadata: ["name": "\(name)", "error": "\(problem)"])
        }
        for warning in loaded.warnings(logLevel: logger.logLevel) {
            logger.warning("\(warning.message)", metadata: ["key": "\(warning.keyPath)"])
        }
    }
}

/// Tells systemd what the daemon is doing (READY, STATUS, RELOADING, STOPPING, WATCHDOG) and
/// reloads the configuration on SIGHUP.
package final class Supervisor: Service, Sendable {
    private let configPath: String
    private let broker: TokenBroker
    let state: NIOLockedValueBox<ServingState>
    private let notifier: SystemdNotifier
    private let listening: AsyncStream<Void>
    private let readyTimeout: Duration
    private let server: SocketServer
    /// What the broker holds now (`Router.snapshot`).
    private let snapshot: @Sendable () async -> BrokerSnapshot
    let logger: Logger
    /// What the key files held when the daemon read them at start.
    private let keyFilesAtStart: KeyFileContents
    /// Reloads asked for, by SIGHUP or by a changed key file, done one at a time in order: two
    /// at once could swap in an older read after a newer one.
    let reloads: (stream: AsyncStream<ReloadCause>, continuation: AsyncStream<ReloadCause>.Continuation)
    /// What the key-file watch acts on: a directory event, or what a reload has just read.
    let keyFileEvents = AsyncStream.makeStream(of: KeyFileEvent.self)

    init(
        configPath: String, broker: TokenBroker, state: NIOLockedValueBox<ServingState>, notifier: SystemdNotifier, listening: AsyncStream<Void>,
        readyTimeout: Duration, server: SocketServer, keyFiles: KeyFileContents,
        reloads: (stream: AsyncStream<ReloadCause>, continuation: AsyncStream<ReloadCause>.Continuation),
        snapshot: @escaping @Sendable () async -> BrokerSnapshot, logger: Logger
    ) {
        self.reloads = reloads
        self.snapshot = snapshot
        self.server = server
        self.keyFilesAtStart = keyFiles
        self.configPath = configPath
        self.broker = broker
        self.state = state
        self.notifier = notifier
        self.listening = listening
        self.readyTimeout = readyTimeout
        self.logger = logger
    }

    /// Hands the heap's free pages back to the system. The first fetches of every profile (and
    /// a reload's) allocate and free a burst of buffers at once; glibc keeps what they freed
    /// unless asked, and a daemon that then idles for days would hold it all that time.
    static func releaseFreeMemory() {
        ProcessMemory.releaseFree()
    }

    package func run() async throws {
        // Trap SIGHUP first: its default action would end the daemon.
        let hangups = await UnixSignalsSequence(trapping: .sighup)
        // Ready once the socket listens and every profile's first fetch has ended (or the wait ran out).
        for await _ in listening.cancelOnGracefulShutdown() { break }
        if Task.isCancelled || Task.isShuttingDownGracefully { return }
        // A stop asked for while the first fetches run is acted on at once, not after the wait.
        let broker = broker
        let readyTimeout = readyTimeout
        _ = await cancelWhenGracefulShutdown { await broker.firstFetchesEnded(within: readyTimeout) }
        if Task.isCancelled || Task.isShuttingDownGracefully {
            notifier.stopping()
            logger.info("stopping")
            return
        }
        let summary = await statusLine()
        notifier.ready(status: summary)
        logger.info("ready", metadata: ["status": "\(summary)"])
        Self.releaseFreeMemory()

        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in hangups { self.reloads.continuation.yield(.signal) }
            }
            group.addTask {
                for await cause in self.reloads.stream { await self.reload(cause) }
            }
            group.addTask { await self.watchKeyFiles(initial: self.keyFilesAtStart) }
            if let interval = self.notifier.watchdogInterval {
                group.addTask { await self.watchdog(every: interval) }
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(30))
                    if Task.isCancelled { break }
                    self.notifier.status(await self.statusLine())
                }
            }
            try? await gracefulShutdown()
            notifier.stopping()
            logger.info("stopping")
            reloads.continuation.finish()
            keyFileEvents.continuation.finish()
            group.cancelAll()
        }
    }

    /// `serving 3 profiles: 2 ready, 1 failing`: the snapshot the socket's answers render too.
    func statusLine() async -> String {
        await snapshot().statusLine
    }

    // MARK: - Reload

    /// Reads the configuration (on SIGHUP) or only the keys (when a key file changed) again. A
    /// file that does not parse is refused and the running configuration kept; otherwise
    /// unchanged profiles keep their tokens.
    func reload(_ cause: ReloadCause) async {
        notifier.reloading()
        switch cause {
        case .signal: logger.info("reloading", metadata: ["config": "\(configPath)"])
        case .keyFiles(let files): logger.info("reloading keys: a key file changed", metadata: ["files": "\(files.joined(separator: ","))"])
        case .rotation(let profile): logger.info("reloading keys: key rotation changed a profile's keys", metadata: ["profile": "\(profile)"])
        }
        do {
            let configuration = try cause == .signal ? ConfigLoader.load(path: configPath) : state.withLockedValue { $0.configuration }
            var loaded = LoadedConfiguration.load(configuration)
            keepKeysInUse(&loaded)
            let changes = try broker.apply(configuration: loaded.configuration, credentials: loaded.credentials)
            let previous = state.withLockedValue { state in
                defer { state = ServingState(loaded) }
                return state
            }
            keyFileEvents.continuation.yield(.loaded(loaded.keyFileContents))
            if previous.configuration.socket != loaded.configuration.socket {
                logger.warning("socket settings changed; they take effect at the next restart")
            }
            Daemon.report(loaded, logger: logger)
            logger.info(
                "reloaded",
                metadata: [
                    "kept": "\(changes.kept.joined(separator: ","))", "started": "\(changes.started.joined(separator: ","))",
                    "stopped": "\(changes.stopped.joined(separator: ","))",
                ])
            notifier.ready(status: await statusLine())
            Self.releaseFreeMemory()
        } catch {
            logger.error("reload refused; the running configuration stays", metadata: ["error": "\(error)"])
            notifier.ready(status: "reload refused (\(error)); " + (await statusLine()))
        }
    }

    /// A profile whose key no longer loads (a half-written file, a wrong paste) keeps the key it
    /// signs with now, rather than stopping: the error is logged and counted, and the next reload
    /// tries the file again. Only a profile that is running has a key to keep.
    func keepKeysInUse(_ loaded: inout LoadedConfiguration) {
        for (name, problem) in loaded.problems {
            guard let kept = broker.cache(for: name)?.credentials else { continue }
            loaded.credentials[name] = kept
            loaded.problems[name] = nil
            Counter(label: MetricName.keyReloadFailures, dimensions: [("profile", name)]).increment()
            logger.error("the new key cannot be used; the key in use is kept", metadata: ["profile": "\(name)", "error": "\(problem)"])
        }
    }

    // MARK: - Watchdog

    /// WATCHDOG=1 at half of `WATCHDOG_USEC`, only while an event loop answers and every cache's
    /// actor responds: a wedged daemon stops petting and systemd restarts it.
    private func watchdog(every interval: Duration) async {
        while !Task.isCancelled {
            if await isHealthy(within: interval / 2) {
                notifier.watchdog()
            } else {
                logger.error("watchdog: an event loop, an accepting thread or a token cache did not respond; not notifying systemd")
            }
            try? await Task.sleep(for: interval)
        }
    }

    private func isHealthy(within limit: Duration) async -> Bool {
        await withTimeLimit(limit) {
            let loop = MultiThreadedEventLoopGroup.singleton.any()
            _ = try? await loop.submit {}.get()
            await self.server.respond()
            for cache in self.broker.caches.values { _ = await cache.status() }
            return true
        } ?? false
    }
}

/// Why the daemon cannot start with what it was given, in words for the operator.
package struct DaemonError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
