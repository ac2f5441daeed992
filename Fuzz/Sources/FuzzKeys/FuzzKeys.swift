import BrokerCrypto
import FuzzSupport

/// EncodedJwk, JWK JSON, PEM keys and certificate chains: any bytes must give a key or a
/// `BrokerCryptoError`, never a crash.
@_cdecl("FuzzKeys_main")
package func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzKeys)
}

/// libFuzzer's entry point (its runtime refers to it by name).
@_cdecl("LLVMFuzzerTestOneInput")
package func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzKeys(data, size)
}

let fuzzKeys: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    let bytes = bytes(data, size)
    if let jwk = try? JWK.parseEncoded(bytes, kid: size % 3 == 0 ? "k1" : nil) {
        _ = try? RSAPrivateKey(jwk: jwk)
        _ = try? RSAPublicKey(jwk: jwk)
    }
    _ = try? RSAPrivateKey(pem: bytes)
    _ = try? Certificate.chain(pem: bytes)
    _ = try? Certificate(der: bytes)
    _ = try? Base64.decode(bytes)
    if let text = String(validating: bytes, as: UTF8.self) {
        _ = try? JWS.split(text)
    }
    return 0
}
