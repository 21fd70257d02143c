import Foundation

/// A count of minor units (cents) that a request may move: an integer from 1 to 10^12.
public struct Amount: Sendable, Hashable, Comparable, CustomStringConvertible {
    public static let maximum: Int64 = 1_000_000_000_000
    public let minorUnits: Int64

    public init?(_ minorUnits: Int64) {
        guard (1...Self.maximum).contains(minorUnits) else { return nil }
        self.minorUnits = minorUnits
    }

    /// The `amount` of a request body: minor units, 1 to 10^12.
    public static let field = Field.required("amount", .integer(1...maximum), summary: "minor units (cents), 1 to 10^12")

    /// Reads `field` from a request body: zero, negative, fractional, string, null, huge or missing is a 422
    /// naming the field.
    public static func parse(_ input: InputObject, _ field: Field = Amount.field) throws -> Amount {
        Amount(try input.integer(field))!
    }

    public static func < (lhs: Amount, rhs: Amount) -> Bool { lhs.minorUnits < rhs.minorUnits }
    public var description: String { String(minorUnits) }
}

/// An ISO 4217-style currency code: three upper-case letters. Wallets default to USD.
public struct Currency: Sendable, Hashable, CustomStringConvertible {
    public static let usd = Currency(checked: "USD")
    public let code: String

    private init(checked code: String) { self.code = code }

    /// Three upper-case ASCII letters.
    public static let rule = TextRule.ascii(.upperCaseLetters, 3...3)

    public init?(_ code: String) {
        guard Self.rule.problem(with: code) == nil else { return nil }
        self.code = code
    }

    public var description: String { code }
}
