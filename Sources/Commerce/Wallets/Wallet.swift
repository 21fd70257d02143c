import DomainValues
import Foundation

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
