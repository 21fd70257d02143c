import Foundation

public enum WalletTag {}
public enum TransferTag {}
public enum LedgerEntryTag {}
public typealias WalletID = TypedID<WalletTag>
public typealias TransferID = TypedID<TransferTag>
public typealias LedgerEntryID = TypedID<LedgerEntryTag>

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

/// A wallet: a balance in minor units of one currency, owned by one user.
public struct Wallet: Sendable, Equatable {
    /// Balances never exceed this (10^15 minor units), so every sum stays far inside Int64.
    public static let maximumBalance: Int64 = 1_000_000_000_000_000

    public let id: WalletID
    public let ownerId: UserID
    public let currency: Currency
    public let balanceMinor: Int64
    public let createdAt: Date
}

/// One immutable line of a wallet's ledger.
public struct LedgerEntry: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case credit, debit
    }

    public let id: LedgerEntryID
    public let walletId: WalletID
    public let kind: Kind
    public let amountMinor: Int64
    public let balanceAfterMinor: Int64
    public let reference: String?
    public let createdAt: Date
    /// Position in the whole ledger (newest has the largest); the list cursor.
    public let entryNo: Int64
}

/// A completed transfer and both wallets as they now are.
public struct TransferResult: Sendable, Equatable {
    public let id: TransferID
    public let from: Wallet
    public let to: Wallet
    public let amountMinor: Int64
}

/// A credit or debit and the wallet as it now is.
public struct WalletMovement: Sendable, Equatable {
    public let wallet: Wallet
    public let entry: LedgerEntry
}
