/// A Norwegian organisation number: nine digits, the last a modulus-11 check digit.
public struct OrganisationNumber: Sendable, Hashable, CustomStringConvertible {
    /// The nine digits.
    public let digits: String

    private static let weights = [3, 2, 7, 6, 5, 4, 3, 2]

    /// Validates `text`; the error says what is wrong with it.
    public init(_ text: String) throws(OrganisationNumberError) {
        guard text.count == 9, text.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw OrganisationNumberError(reason: "\"\(text)\" is not an organisation number: it must be exactly 9 digits")
        }
        let values = text.compactMap { $0.wholeNumberValue }
        let sum = zip(values.prefix(8), Self.weights).reduce(0) { $0 + $1.0 * $1.1 }
        let remainder = sum % 11
        let check = remainder == 0 ? 0 : 11 - remainder
        guard check != 10, check == values[8] else {
            throw OrganisationNumberError(reason: "\"\(text)\" is not an organisation number: its check digit is wrong (a typo?)")
        }
        digits = text
    }

    public var description: String { digits }
}

/// Why a text is not an organisation number.
public struct OrganisationNumberError: Error, Sendable {
    /// What is wrong.
    public var reason: String
}
