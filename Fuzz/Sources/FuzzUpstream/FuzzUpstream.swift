import BrokerCrypto
import BrokerTokens
import BrokerUpstream
import FuzzSupport
import NIOHTTP1

/// Bytes the daemon reads from outside itself: Maskinporten's and Altinn's answers (any status,
/// headers and body must give a token or a classified `TokenError`), and the token store systemd
/// hands back at start (any bytes must give tokens or a refusal, and what is read must be what
/// writing it again gives).
@_cdecl("FuzzUpstream_main")
package func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzUpstream)
}

/// libFuzzer's entry point (its runtime refers to it by name).
@_cdecl("LLVMFuzzerTestOneInput")
package func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzUpstream(data, size)
}

let fuzzUpstream: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    let bytes = bytes(data, size)
    let statuses = [200, 200, 200, 400, 401, 429, 500, 503, 302]
    let status = statuses[Int(bytes.first ?? 0) % statuses.count]
    let body = Array(bytes.dropFirst())
    let retryAfter = String(decoding: body.prefix(32), as: UTF8.self)
    _ = UpstreamAnswers.maskinporten(status: status, headers: [("Retry-After", retryAfter)], body: body)
    _ = UpstreamAnswers.altinn(status: status, headers: [("Retry-After", retryAfter)], body: body)
    _ = UpstreamAnswers.retryAfterDuration(retryAfter)
    TokenStoreProperty.check(bytes)
    WireAnswerProperty.check(bytes)
    return 0
}

enum WireAnswerProperty {
    /// Altinn's answer as the fast path reads it: any bytes give a head, a refusal or a wait;
    /// a head's fields lie inside it; a body reader takes no more than it is given.
    static func check(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            guard case .head(let head) = WireAnswerHead.parse(raw, method: .POST) else { return }
            precondition(head.length <= raw.count && head.fields.allSatisfy { $0.name.upperBound <= head.length && $0.value.upperBound <= head.length })
            var reader = WireBodyReader(head.framing)
            var offset = head.length
            // The rest in pieces of 1, 2, 3... bytes, as reads would give it.
            var size = 1
            while offset < raw.count && !reader.finished {
                let piece = UnsafeRawBufferPointer(rebasing: raw[offset..<min(raw.count, offset + size)])
                guard let taken = reader.take(piece) else { return }
                precondition(taken <= piece.count)
                if taken < piece.count { precondition(reader.finished) }
                offset += piece.count
                size += 1
            }
        }
    }
}

enum TokenStoreProperty {
    /// The bytes as a whole file, and as the entries of a file with a valid header and checksum
    /// (random bytes never pass the checksum, so the entries' reader would go unexercised).
    static func check(_ bytes: [UInt8]) {
        _ = TokenStoreFile.decode(bytes)
        var file = Array("MPBTOKENS".utf8) + [TokenStoreFile.version] + bytes
        file += Digest.sha256(file)
        guard case .success(let tokens) = TokenStoreFile.decode(file) else { return }
        guard case .success(let again) = TokenStoreFile.decode(TokenStoreFile.encode(tokens)), again == tokens else {
            fatalError("a store file read back differently once written again")
        }
    }
}
