import BrokerUpstream
import FuzzSupport

/// Maskinporten's and Altinn's answers: any status, headers and body must give a token or a
/// classified `TokenError`.
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
    return 0
}
