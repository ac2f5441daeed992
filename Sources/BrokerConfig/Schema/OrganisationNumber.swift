/// A Norwegian organisation number: nine digits, the last a modulus-11 check digit.
package struct OrganisationNumber: Sendable, Hashable, CustomStringConvertible {
    /// The nine digits.
    package let digits: String

    @inlinable package static func == (left: OrganisationNumber, right: OrganisationNumber) -> Bool { left.digits == right.digits }
    @inlinable package func hash(into hasher: inout Hasher) { hasher.combine(digits) }

    @usableFromInline static let weights = [3, 2, 7, 6, 5, 4, 3, 2]

    /// Validates `text`; the error says what is wrong with it. Inlinable: it runs for each
    /// delegated token request, in `BrokerServer`, and a call into another module is not
    /// specialised or inlined otherwise.
    @inlinable
    package init(_ text: String) throws(OrganisationNumberError) {
        // Bytes, not Characters, and nothing allocated: this runs for each delegated token request.
        var sum = 0
        var last = -1
        if text.utf8.count == 9 {
            for (position, byte) in text.utf8.enumerated() {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { break }
                let digit = Int(byte - UInt8(ascii: "0"))
                if position < 8 { sum += digit * Self.weights[position] } else { last = digit }
            }
        }
        guard last >= 0 else {
            throw OrganisationNumberError(reason: "\"\(text)\" is not an organisation number: it must be exactly 9 digits")
        }
        let remainder = sum % 11
        let check = remainder == 0 ? 0 : 11 - remainder
        guard check != 10, check == last else {
            throw OrganisationNumberError(reason: "\"\(text)\" is not an organisation number: its check digit is wrong (a typo?)")
        }
        digits = text
    }

    package var description: String { digits }
}

/// Why a text is not an organisation number.
package struct OrganisationNumberError: Error, Sendable {
    /// What is wrong.
    package var reason: String

    @usableFromInline init(reason: String) {
        self.reason = reason
    }
}
