import BrokerConfig
import BrokerPOSIX
import BrokerServer
import Logging
import NIOConcurrencyHelpers

/// Why a reload runs.
enum ReloadCause: Sendable, Equatable {
    /// SIGHUP: the configuration file and everything it names.
    case signal
    /// These key files changed: the running configuration's keys are read again, and not the
    /// configuration file (an edit to it is taken on SIGHUP, when its author says it is done).
    case keyFiles([String])
    /// Key rotation registered or retired a profile's key: its keys are read again.
    case rotation(profile: String)
}

/// What the key-file watch acts on.
enum KeyFileEvent: Sendable {
    /// Something happened in a watched directory.
    case directoryChanged
    /// A reload read the key files as they were then: later changes show against this.
    case loaded(KeyFileContents)
}

extension Supervisor {
    /// How long a burst of directory events is let run before the files are compared: an
    /// editor's save or a secret volume's swap is several events, and comparing at the first
    /// would read a half-written file.
    static let keyFileSettleTime: Duration = .milliseconds(300)

    /// Watches the directories of the running configuration's key files and asks for a key
    /// reload when a file's contents change: written in place, replaced by rename, or reached
    /// through a swapped symlink. A new file that does not load keeps the key in use
    /// (`keepKeysInUse`), as on SIGHUP.
    func watchKeyFiles(initial: KeyFileContents) async {
        var known = initial
        var configuration = state.withLockedValue { $0.configuration }
        var unwatchable: Set<String> = []
        var watcher: FileWatcher?
        defer { watcher?.stop() }
        var events = keyFileEvents.stream.makeAsyncIterator()
        var rewatch = true
        // A change made between the start's read and this watch has no event of its own.
        keyFileEvents.continuation.yield(.directoryChanged)
        while !Task.isCancelled {
            if rewatch {
                watcher?.stop()
                watcher = makeKeyFileWatcher(configuration.keyFiles, unwatchable: &unwatchable)
                rewatch = false
            }
            guard let event = await events.next() else { return }
            switch event {
            case .loaded(let contents):
                known = contents
                let current = state.withLockedValue { $0.configuration }
                rewatch = current.keyFiles != configuration.keyFiles
                configuration = current
            case .directoryChanged:
                try? await Task.sleep(for: Self.keyFileSettleTime)
                let now = KeyFileContents(paths: configuration.keyFiles)
                let changed = now.changed(since: known)
                guard !changed.isEmpty else { continue }
                known = now
                // A swapped symlink may lead to a directory not watched yet.
                rewatch = true
                reloads.continuation.yield(.keyFiles(changed))
            }
        }
    }

    private func makeKeyFileWatcher(_ files: [String], unwatchable: inout Set<String>) -> FileWatcher? {
        guard !files.isEmpty else { return nil }
        let events = keyFileEvents.continuation
        do {
            let watcher = try FileWatcher(paths: files) { events.yield(.directoryChanged) }
            for problem in watcher.problems where unwatchable.insert(problem.directory).inserted {
                logger.warning(
                    "a key file's directory cannot be watched; a changed key there takes effect on reload (systemctl reload maskinporten-broker)",
                    metadata: ["directory": "\(problem.directory)", "error": "\(problem.error)"])
            }
            return watcher
        } catch {
            if unwatchable.insert("").inserted {
                logger.warning(
                    "key files cannot be watched; a changed key takes effect on reload (systemctl reload maskinporten-broker)",
                    metadata: ["error": "\(error)"])
            }
            return nil
        }
    }
}
