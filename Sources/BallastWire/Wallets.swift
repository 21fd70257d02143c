import Foundation

/// A wallet: its balance in minor units of its currency.
public struct WalletBody: Codable, Sendable, Equatable {
    public let id: String
    public let ownerId: String
    public let currency: String
    public let balance: Int64
    public let createdAt: Date

    public init(id: String, ownerId: String, currency: String, balance: Int64, createdAt: Date) {
        self.id = id
        self.ownerId = ownerId
        self.currency = currency
        self.balance = balance
        self.createdAt = createdAt
    }
}

/// One ledger entry of a wallet.
public struct LedgerEntryBody: Codable, Sendable, Equatable {
    public let id: String
    public let kind: String
    public let amount: Int64
    public let balanceAfter: Int64
    @Nullable public var reference: String?
    public let createdAt: Date

    public init(id: String, kind: String, amount: Int64, balanceAfter: Int64, reference: String?, createdAt: Date) {
        self.id = id
        self.kind = kind
        self.amount = amount
        self.balanceAfter = balanceAfter
        self.reference = reference
        self.createdAt = createdAt
    }
}

/// A credit or debit: the wallet after it and its ledger entry.
public struct MovementBody: Codable, Sendable, Equatable {
    public let wallet: WalletBody
    public let transaction: LedgerEntryBody

    public init(wallet: WalletBody, transaction: LedgerEntryBody) {
        self.wallet = wallet
        self.transaction = transaction
    }
}

/// A transfer as its caller may see it: the source wallet in full, the target in full only for its owner or an
/// admin, otherwise its id alone (SPEC I11: nothing of another user's wallet is shown).
public struct TransferBody: Codable, Sendable, Equatable {
    public enum Target: Codable, Sendable, Equatable {
        case wallet(WalletBody)
        case idOnly(String)

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            if container.contains(.balance) {
                self = .wallet(try WalletBody(from: decoder))
            } else {
                self = .idOnly(try container.decode(String.self, forKey: .id))
            }
        }

        public func encode(to encoder: any Encoder) throws {
            switch self {
            case .wallet(let wallet): try wallet.encode(to: encoder)
            case .idOnly(let id):
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
            }
        }

        enum CodingKeys: String, CodingKey { case id, balance }
    }

    public let id: String
    public let amount: Int64
    public let from: WalletBody
    public let to: Target

    public init(id: String, amount: Int64, from: WalletBody, to: Target) {
        self.id = id
        self.amount = amount
        self.from = from
        self.to = to
    }
}
