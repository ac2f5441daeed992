import COpenSSL

/// Reads and clears OpenSSL's per-thread error queue.
enum OpenSSLErrorQueue {
    /// Every queued error as OpenSSL's own one-line text, oldest first; the queue is left empty.
    static func drain() -> [String] {
        var messages: [String] = []
        var buffer = [CChar](repeating: 0, count: 256)
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            ERR_error_string_n(code, &buffer, buffer.count)
            messages.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return messages
    }

    /// An error whose reason is `what` followed by everything on the OpenSSL error queue.
    static func error(_ what: String, fileID: String = #fileID, line: Int = #line) -> BrokerCryptoError {
        error(.openSSLFailure, what, fileID: fileID, line: line)
    }

    /// An error of the given code whose reason is `what` followed by the OpenSSL error queue.
    static func error(
        _ code: BrokerCryptoError.Code,
        _ what: String,
        fileID: String = #fileID,
        line: Int = #line
    ) -> BrokerCryptoError {
        let queue = drain()
        let reason = queue.isEmpty ? what : "\(what) (OpenSSL: \(queue.joined(separator: "; ")))"
        return BrokerCryptoError(code, reason, fileID: fileID, line: line)
    }
}
