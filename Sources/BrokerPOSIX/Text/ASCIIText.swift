/// Case-insensitive ASCII comparisons over bytes, without Foundation or generic searching (both
/// cost more than the rest of a cached-token request).
package enum ASCIIText {
    /// Whether `bytes[range]` is `lowercase` in any letter case (`lowercase` is ASCII lower case).
    package static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = lowercase.utf8Start
        for offset in 0..<range.count {
            var byte = bytes[range.lowerBound + offset]
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { byte |= 0x20 }
            guard byte == expected[offset] else { return false }
        }
        return true
    }

    /// Whether `text` contains `lowercase` in any letter case.
    package static func contains(_ text: String, ignoringCase lowercase: StaticString) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in
            let bytes = UnsafeRawBufferPointer(utf8)
            let length = lowercase.utf8CodeUnitCount
            guard bytes.count >= length else { return false }
            for start in 0...(bytes.count - length) where equalsIgnoringCase(bytes, start..<(start + length), lowercase) {
                return true
            }
            return false
        }
    }

    /// Whether `bytes[range]` contains `lowercase` in any letter case.
    package static func contains(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        let length = lowercase.utf8CodeUnitCount
        guard range.count >= length else { return false }
        for start in range.lowerBound...(range.upperBound - length) where equalsIgnoringCase(bytes, start..<(start + length), lowercase) {
            return true
        }
        return false
    }
}
