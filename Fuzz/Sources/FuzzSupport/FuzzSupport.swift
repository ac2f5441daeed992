#if FUZZING
    /// libFuzzer's driver, for targets whose `main` SwiftPM names `<Target>_main`.
    @_silgen_name("LLVMFuzzerRunDriver")
    func llvmFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<Int32>,
        _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
    ) -> Int32
#else
    #if canImport(Glibc)
        import Glibc
    #endif
#endif

/// Runs libFuzzer with `callback` for each input when built for fuzzing (`Fuzz/run` builds with
/// `-DFUZZING` and `-sanitize=fuzzer`). Otherwise, as in every `swift build`, which keeps the
/// targets compiling against the modules they fuzz, it runs `callback` once on each file named on
/// the command line: the corpus replayed.
package func runFuzzer(
    _ argc: Int32,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32 {
    #if FUZZING
        var count = argc
        var arguments = argv
        return llvmFuzzerRunDriver(&count, &arguments, callback)
    #else
        for index in 1..<Int(argc) {
            guard let path = argv?[index], let file = fopen(path, "rb") else {
                print("cannot read \(argv?[index].map { String(cString: $0) } ?? "?")")
                return 1
            }
            var input: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65536)
            while case let read = fread(&buffer, 1, buffer.count, file), read > 0 { input += buffer[..<read] }
            fclose(file)
            _ = input.withUnsafeBufferPointer { callback($0.baseAddress, $0.count) }
        }
        return 0
    #endif
}

/// The input as bytes.
package func bytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}
