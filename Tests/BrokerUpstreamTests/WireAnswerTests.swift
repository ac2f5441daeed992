import NIOHTTP1
import Testing

@testable import BrokerUpstream

/// The fast path's reading of Altinn's answers: the head, and where the body ends, for every
/// framing, whatever the reads' boundaries.
@Suite("The fast path's answer reader")
struct WireAnswerTests {
    static func parse(_ text: String, method: HTTPMethod = .POST) -> WireAnswerHead.Parse {
        Array(text.utf8).withUnsafeBytes { WireAnswerHead.parse($0, method: method) }
    }

    static func head(_ text: String, method: HTTPMethod = .POST) throws -> WireAnswerHead {
        guard case .head(let head) = parse(text, method: method) else {
            Issue.record("no head in \(text.debugDescription): \(parse(text, method: method))")
            throw CancellationError()
        }
        return head
    }

    static func fields(_ head: WireAnswerHead, in text: String) -> [String] {
        let bytes = Array(text.utf8)
        return head.fields.map { String(decoding: bytes[$0.name], as: UTF8.self) + "=" + String(decoding: bytes[$0.value], as: UTF8.self) }
    }

    @Test("status, fields as sent (white space around values dropped), the length framing, a connection kept")
    func lengthFramed() throws {
        let text = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length:  2 \r\nX-Trace:\tabc\r\n\r\n{}"
        let head = try Self.head(text)
        #expect(head.status == 201 && head.framing == .length(2) && head.reusable)
        #expect(head.length == text.utf8.count - 2)
        #expect(Self.fields(head, in: text) == ["Content-Type=application/json", "Content-Length=2", "X-Trace=abc"])
        #expect(head.connectionOptions.isEmpty)
    }

    @Test("the framings: chunked, until close (and not kept), none for 204, 304, HEAD and 1xx")
    func framings() throws {
        #expect(try Self.head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").framing == .chunked)
        let untilClose = try Self.head("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n")
        #expect(untilClose.framing == .untilClose && !untilClose.reusable)
        #expect(try Self.head("HTTP/1.1 204 No Content\r\n\r\n").framing == .empty)
        #expect(try Self.head("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n").framing == .empty)
        #expect(try Self.head("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n", method: .HEAD).framing == .empty)
        #expect(try Self.head("HTTP/1.1 100 Continue\r\n\r\n").framing == .empty)
    }

    @Test("Connection: close and HTTP/1.0 end the connection; the names Connection lists are kept to drop")
    func connection() throws {
        #expect(try !Self.head("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").reusable)
        #expect(try !Self.head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n").reusable)
        #expect(try Self.head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").reusable)
        let listed = try Self.head("HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nContent-Length: 0\r\n\r\n")
        #expect(listed.reusable && listed.connectionOptions == ["x-hop"])
    }

    @Test(
        "what is not an answer the fast path can pass on is refused in words",
        arguments: [
            "HTTP/2 200\r\n\r\n", "HTTP/1.1 2x0 OK\r\n\r\n", "garbage\r\n\r\n", "HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\n: empty\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ])
    func invalid(text: String) {
        guard case .invalid(let reason) = Self.parse(text) else {
            Issue.record("taken: \(text.debugDescription)")
            return
        }
        #expect(reason.hasPrefix("Altinn's answer"))
    }

    @Test("a head not whole yet waits; one past 64 KiB is refused")
    func incomplete() {
        if case .incomplete = Self.parse("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n") {} else { Issue.record("not incomplete") }
        if case .invalid = Self.parse("HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 70_000)) {} else { Issue.record("taken") }
    }

    /// Feeds `body` to a reader in pieces of `size`: the bytes it took, and whether it ended.
    static func read(_ body: String, framing: WireFraming, size: Int) -> (taken: Int, finished: Bool, malformed: Bool) {
        var reader = WireBodyReader(framing)
        let bytes = Array(body.utf8)
        var taken = 0
        var offset = 0
        while offset < bytes.count && !reader.finished {
            let piece = Array(bytes[offset..<min(bytes.count, offset + size)])
            guard let count = piece.withUnsafeBytes({ reader.take($0) }) else { return (taken, false, true) }
            taken += count
            offset += piece.count
            if count < piece.count { break }
        }
        return (taken, reader.finished, false)
    }

    @Test("a chunked body ends after its last chunk and trailer, read in pieces of any size; what follows is not its")
    func chunked() {
        let body = "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n"
        for size in [1, 2, 3, 7, 64] {
            let read = Self.read(body + "HTTP/1.1 200", framing: .chunked, size: size)
            #expect(read.taken == body.utf8.count && read.finished && !read.malformed, "pieces of \(size)")
        }
        #expect(Self.read("0\r\n\r\n", framing: .chunked, size: 1) == (5, true, false))
    }

    @Test("a malformed chunked body is refused", arguments: ["x\r\n", "5\r\nhelloX\r\n", "5\nhello\r\n", "\r\n", "1234567890123456\r\n"])
    func malformedChunks(body: String) {
        #expect(Self.read(body, framing: .chunked, size: 64).malformed)
    }

    @Test("a length-framed body ends at its length; an until-close one takes everything; an empty one nothing")
    func lengths() {
        #expect(Self.read("helloHTTP", framing: .length(5), size: 2) == (5, true, false))
        #expect(Self.read("hello", framing: .length(10), size: 64) == (5, false, false))
        #expect(Self.read("anything", framing: .untilClose, size: 3) == (8, false, false))
        #expect(WireBodyReader(.empty).finished && WireBodyReader(.length(0)).finished)
    }
}
