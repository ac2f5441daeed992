import CSystemShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Tells when something may have changed in the directories that hold a set of files, through
/// inotify. It watches directories, not the files: a key replaced by rename (as editors and
/// `install` do) or a symlink swapped (as Kubernetes swaps a secret volume's `..data`) leaves a
/// watch on the old file's inode silent. The directories a file's symlinks lead through are
/// watched too. What changed is the caller's to find out (it compares the files' contents):
/// an event here only says "look again".
///
/// A watcher is made for one set of directories; after a change the caller makes a new one, as
/// a swapped symlink may now lead elsewhere. Events are read on a thread of their own, which
/// blocks in poll(2) until `stop()`.
package final class FileWatcher: Sendable {
    /// The directories watched.
    package let directories: [String]
    /// Directories that could not be watched, with why (a missing or unreadable directory).
    package let problems: [Problem]
    private let wake: Int32

    /// A directory that could not be watched.
    package struct Problem: Sendable {
        /// The directory.
        package var directory: String
        /// Why.
        package var error: SystemError
    }

    /// Watches the directories holding `paths` and every directory their symlinks lead
    /// through; `onChange` is called (on the watcher's thread) once for each burst of events.
    package init(paths: [String], onChange: @escaping @Sendable () -> Void) throws(SystemError) {
        let inotify = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard inotify >= 0 else { throw SystemError("inotify_init1") }
        let wake = CSystemShims_eventFD()
        guard wake >= 0 else {
            let error = SystemError("eventfd")
            close(inotify)
            throw error
        }
        var watched: [String] = []
        var problems: [Problem] = []
        let mask = UInt32(IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF)
        for directory in Self.directories(for: paths) {
            if inotify_add_watch(inotify, directory, mask) >= 0 {
                watched.append(directory)
            } else {
                problems.append(Problem(directory: directory, error: SystemError("inotify_add_watch")))
            }
        }
        do {
            // The thread owns both descriptors and closes them when it ends.
            try SystemThread.detach(name: "key-file-watch") {
                var buffer = [UInt8](repeating: 0, count: 4096)
                var descriptors = [pollfd(fd: inotify, events: Int16(POLLIN), revents: 0), pollfd(fd: wake, events: Int16(POLLIN), revents: 0)]
                while true {
                    let ready = poll(&descriptors, 2, -1)
                    if ready < 0, errno == EINTR { continue }
                    if ready < 0 || descriptors[1].revents != 0 { break }
                    // Drain what is queued; one "look again" covers all of it.
                    while read(inotify, &buffer, buffer.count) > 0 {}
                    onChange()
                }
                close(inotify)
                close(wake)
            }
        } catch {
            close(inotify)
            close(wake)
            throw error as! SystemError
        }
        self.wake = wake
        directories = watched
        self.problems = problems
    }

    /// Ends the watching thread; no `onChange` call starts after it has seen this. Call once.
    package func stop() {
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    /// The directories to watch for `paths`: each file's own directory, then each directory a
    /// chain of symlinks passes through (at most 16 links per file, as the kernel allows 40).
    static func directories(for paths: [String]) -> [String] {
        var result: [String] = []
        func add(_ directory: String) {
            if !result.contains(directory) { result.append(directory) }
        }
        for path in paths {
            var current = path
            add(parent(of: current))
            for _ in 0..<16 {
                guard let target = readLink(current) else { break }
                current = target.hasPrefix("/") ? target : parent(of: current) + "/" + target
                add(parent(of: current))
            }
        }
        return result
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
