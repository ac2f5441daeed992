import BrokerPOSIX
import Foundation
import Testing

/// The string methods written without Foundation, held to what Foundation's own gave.
@Suite("Text without Foundation")
struct TextEssentialsTests {
    static let texts = [
        "", "plain", "a b", " padded\t", "\n\r\t both \n", "ø and æ", "a/../b?c=d e", "100%", "%41%2f%2F", "%zz", "%4", "+plus+", "\u{7}", "~-._*",
        "emoji 🚀", "%C3%B8", "%FF",
    ]

    @Test("percent-encoding matches Foundation's with the same characters kept", arguments: texts)
    func encoding(_ text: String) {
        var unreserved = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        unreserved.insert(charactersIn: "-._~")
        #expect(PercentEncoding.encode(text) == text.addingPercentEncoding(withAllowedCharacters: unreserved))
        var form = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        form.insert(charactersIn: "-._*")
        #expect(PercentEncoding.encode(text, keeping: "-._*") == text.addingPercentEncoding(withAllowedCharacters: form))
    }

    @Test("percent-decoding matches Foundation's, nil for what it refuses", arguments: texts)
    func decoding(_ text: String) {
        #expect(PercentEncoding.decode(text) == text.removingPercentEncoding)
    }

    @Test("trimming matches Foundation's white space and line ends", arguments: texts)
    func trimming(_ text: String) {
        #expect(text.trimmed() == text.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test(
        "a path's directory and last component match NSString's",
        arguments: ["/etc/broker.yaml", "/var/lib/maskinporten-broker/state/a.keys.jwk", "/a/b/", "/a", "/", "name", "dir/name"])
    func paths(_ path: String) {
        #expect(PathText.directory(of: path) == (path as NSString).deletingLastPathComponent)
        #expect(PathText.lastComponent(of: path) == (path as NSString).lastPathComponent)
    }

    @Test(
        "a search for a run of elements finds what the standard library's firstRange(of:) finds",
        arguments: [
            ("HTTP/1.1 200 OK\r\n\r\nbody", "\r\n\r\n"), ("abcabd", "abd"), ("aaab", "aab"), ("abc", "abcd"), ("", "a"), ("abc", ""),
            ("-----BEGIN TSS2 PRIVATE KEY-----x", "-----BEGIN TSS2 PRIVATE KEY-----"), ("no match here", "xyz"), ("æøå: ø", "ø"),
        ])
    func searching(_ text: String, _ pattern: String) {
        let ours = text.utf8.firstRange(ofElements: pattern.utf8)
        let theirs = Array(text.utf8).firstRange(of: Array(pattern.utf8))
        #expect(ours.map { text.utf8.distance(from: text.utf8.startIndex, to: $0.lowerBound) } == theirs?.lowerBound)
        #expect(ours.map { text.utf8.distance(from: text.utf8.startIndex, to: $0.upperBound) } == theirs?.upperBound)
        #expect(text.containsText(pattern) == text.contains(pattern))
    }
}
