import COpenSSL

/// `OPENSSL_cleanse`: zeroing that the compiler may not remove.
enum OpenSSLCleanse {
    static func cleanse(_ pointer: UnsafeMutableRawPointer, _ count: Int) {
        OPENSSL_cleanse(pointer, count)
    }
}
