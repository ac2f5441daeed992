import BrokerClient

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// `maskinporten-brokerd`, the executable with every command, installed next to this one.
enum FullExecutable {
    static let name = "maskinporten-brokerd"

    /// Its path: beside this executable's real file (symbolic links resolved by the kernel).
    static var path: String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let own = length > 0 ? String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : CommandLine.arguments[0]
        guard let slash = own.lastIndex(of: "/") else { return name }
        return own[...slash] + name
    }

    /// Replaces this process with `maskinporten-brokerd ARGUMENTS`, keeping the name it was
    /// called by as `argv[0]` (what `dev` prints to run); returns only on failure, with the exit
    /// status after saying why.
    static func exec(_ arguments: [String]) -> Int32 {
        let path = self.path
        var argv: [UnsafeMutablePointer<CChar>?] = ([CommandLine.arguments[0]] + arguments).map { strdup($0) }
        argv.append(nil)
        if path.contains("/") { execv(path, &argv) } else { execvp(path, &argv) }
        let reason = String(cString: strerror(errno))
        printError("maskinporten-broker: cannot run \(path): \(reason) (it is installed next to maskinporten-broker, from the same build)")
        return 1
    }
}
