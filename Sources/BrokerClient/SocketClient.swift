internal import BrokerPOSIX

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A minimal blocking HTTP/1.1 client over a Unix socket: one request, `Connection: close`, no
/// event loop, so that `token` and `health` start and finish as fast as a small C program.
package struct SocketClient: Sendable {
    /// The answer.
    package struct Response: Sendable {
        package var status: Int
        package var headers: [(String, String)]
        package var body: [UInt8]

        package var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// Why no answer was had.
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    package let path: String
    package var timeoutSeconds = 30

    package init(path: String) {
        self.path = path
    }

    /// `--socket`, else `$MASKINPORTEN_BROKER_SOCKET`, else the default path.
    package static func resolvePath(_ explicit: String?) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = ProcessEnvironment.value("MASKINPORTEN_BROKER_SOCKET"), !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        return "/run/maskinporten-broker/broker.sock"
    }

    package func request(_ method: String, _ target: String, accept: String) throws -> Response {
        try request(method, target, headers: [("Accept", accept)])
    }

    /// A request with `headers` (besides Host, User-Agent, Content-Length and Connection, which
    /// are the client's own) and `body`; the answer is read whole, up to `limit` bytes.
    package func request(_ method: String, _ target: String, headers: [(String, String)], body: [UInt8] = [], limit: Int = 4 << 20) throws -> Response {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw Failure(description: "socket: \(Self.errorText())") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: timeoutSeconds, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))

        guard let address = UnixSocketAddress(path) else {
            throw Failure(description: "the socket path \(path) is too long")
        }
        if let failure = address.connect(fd) {
            errno = failure
            let hint =
                errno == ENOENT || errno == ECONNREFUSED
                ? " (is maskinporten-broker running? see: systemctl status maskinporten-broker.socket maskinporten-broker)"
                : (errno == EACCES ? " (\(Self.groupHint(path)))" : "")
            throw Failure(description: "cannot connect to \(path): \(Self.errorText())\(hint)")
        }

        var head = "\(method) \(target) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: maskinporten-broker\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        let request = Array((head + "Content-Length: \(body.count)\r\nConnection: close\r\n\r\n").utf8) + body
        var sent = 0
        while sent < request.count {
            let written = request.withUnsafeBytes { send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                throw Failure(description: "cannot send to \(path): \(Self.errorText())")
            }
            sent += written
        }

        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(
                    description: errno == EAGAIN
                        ? "no answer from \(path) within \(timeoutSeconds) s: the socket takes connections but the daemon does not answer; "
                            + "systemd holds them while the daemon starts, and while it fails to: \(Self.statusHint)"
                        : "cannot read from \(path): \(Self.errorText())\(errno == ECONNRESET ? "; \(Self.statusHint)" : "")")
            }
            if count == 0 {
                if received.isEmpty {
                    throw Failure(description: "\(path) closed the connection without an answer (the daemon stopped or failed to start?); \(Self.statusHint)")
                }
                break
            }
            received.append(contentsOf: chunk[0..<count])
            if received.count > limit + 64 * 1024 { throw Failure(description: "the answer from \(path) is larger than \(limit >> 20) MiB") }
        }
        return try Self.parse(received)
    }

    package static func parse(_ bytes: [UInt8]) throws -> Response {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = bytes.indices.first(where: { bytes[$0...].starts(with: separator) }) else {
            throw Failure(description: "the daemon's answer is not HTTP")
        }
        let headText = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = headText.split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusLine = lines.removeFirst().split(separator: " ")
        guard statusLine.count >= 2, let status = Int(statusLine[1]) else {
            throw Failure(description: "the daemon's answer has no status")
        }
        let headers = lines.compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (line[..<colon].lowercased(), line[line.index(after: colon)...].trimmed())
        }
        var body = Array(bytes[(end + 4)...])
        if headers.contains(where: { $0.0 == "transfer-encoding" && $0.1.lowercased().containsText("chunked") }) {
            body = try dechunked(body)
        } else if let length = headers.first(where: { $0.0 == "content-length" }).flatMap({ Int($0.1) }), length < body.count {
            body = Array(body.prefix(length))
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// A chunked body's data (RFC 9112, section 7.1); trailers are dropped.
    static func dechunked(_ bytes: [UInt8]) throws -> [UInt8] {
        var data: [UInt8] = []
        var index = 0
        while true {
            guard let lineEnd = (index..<max(index, bytes.count - 1)).first(where: { bytes[$0] == 13 && bytes[$0 + 1] == 10 }) else {
                throw Failure(description: "the daemon's answer ended inside a chunk")
            }
            let sizeText = String(decoding: bytes[index..<lineEnd], as: UTF8.self).split(separator: ";").first.map(String.init) ?? ""
            guard let size = Int(sizeText.trimmed(), radix: 16), size >= 0 else {
                throw Failure(description: "the daemon's answer has a malformed chunk")
            }
            index = lineEnd + 2
            if size == 0 { return data }
            guard index + size <= bytes.count else { throw Failure(description: "the daemon's answer ended inside a chunk") }
            data += bytes[index..<(index + size)]
            index += size + 2
        }
    }

    static func errorText() -> String { String(cString: strerror(errno)) }

    /// Where an operator sees why the daemon does not answer.
    static let statusHint = "see systemctl status maskinporten-broker and journalctl -u maskinporten-broker"

    /// `the socket's group is maskinporten: add this user to it (...)`. The group's name is read
    /// from /etc/group itself: this client is static, and NSS cannot be loaded into it.
    static func groupHint(_ path: String) -> String {
        var info = stat()
        guard stat(path, &info) == 0 else { return "is this user in the socket's group?" }
        var name = "\(info.st_gid)"
        if let file = fopen("/etc/group", "re") {
            defer { fclose(file) }
            var line: UnsafeMutablePointer<CChar>?
            var capacity = 0
            defer { free(line) }
            while getline(&line, &capacity, file) > 0, let line {
                let fields = String(cString: line).split(separator: ":", omittingEmptySubsequences: false)
                if fields.count > 2, fields[2] == "\(info.st_gid)" {
                    name = String(fields[0])
                    break
                }
            }
        }
        return
            "only the socket's group, \(name), may connect: add this user to it, as SupplementaryGroups=\(name) in a service's unit or usermod -aG \(name) USER and a new login"
    }
}

/// Reads `"error"` and `"error_description"` from an error body without Foundation.
package enum ErrorBodyText {
    package static func summary(_ body: String) -> String {
        let error = value(of: "error", in: body)
        let description = value(of: "error_description", in: body)
        switch (error, description) {
        case (let error?, let description?): return "\(error): \(description)"
        case (let error?, nil): return error
        default: return body.split(separator: "\n").first.map(String.init) ?? "no details"
        }
    }

    /// The string value of a top-level key (simple scan: the daemon's error bodies are flat).
    package static func value(of key: String, in body: String) -> String? {
        guard let range = body.firstRange(ofElements: "\"\(key)\":\"") else { return nil }
        var result = ""
        var escaped = false
        for character in body[range.upperBound...] {
            if escaped {
                result.append(character == "n" ? "\n" : character)
                escaped = false
            } else if character == "\\" {
                escaped = true
            } else if character == "\"" {
                return result
            } else {
                result.append(character)
            }
        }
        return nil
    }
}
