import BrokerConfig
import FuzzSupport

/// The configuration reader (libyaml's events, the composer, the strict reader): any text must
/// give a configuration or a `ConfigError`.
@_cdecl("FuzzConfig_main")
package func main(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    runFuzzer(argc, argv, fuzzConfig)
}

/// libFuzzer's entry point (its runtime refers to it by name).
@_cdecl("LLVMFuzzerTestOneInput")
package func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzConfig(data, size)
}

let fuzzConfig: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32 = { data, size in
    let text = String(decoding: bytes(data, size), as: UTF8.self)
    do {
        _ = try ConfigLoader.parse(yaml: text, file: "fuzz.yaml", baseDirectory: "/nonexistent")
    } catch is ConfigError {
    } catch {
        // The reader's own errors (libyaml's, the composer's) must reach the user as a ConfigError
        // with the file and line.
        fatalError("the configuration reader let through \(type(of: error))")
    }
    return 0
}
