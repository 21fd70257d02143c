import BallastCore
import DomainValues
/// `POST /api/wallets`: `{currency?}` (USD when absent).
public struct NewWalletRequest: Sendable, Equatable {
    public static let currency = Field.optional("currency", .text(Currency.rule), summary: "ISO 4217 code; USD when absent")
    public static let shape = ObjectShape([currency])

    public let currency: Currency

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        currency = try input.optionalText(Self.currency).flatMap(Currency.init) ?? .usd
    }
}

/// `POST /api/wallets/{id}/credit` and `…/debit`: `{amount, reference?}`.
public struct MovementRequest: Sendable, Equatable {
    public static let reference = Field.optional("reference", .text(.printable(max: 200)), summary: "shown in the ledger")
    public static let shape = ObjectShape([Amount.field, reference])

    public let amount: Amount
    public let reference: String?

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        amount = try Amount.parse(input)
        reference = try input.optionalText(Self.reference)
    }
}

/// `POST /api/transfers`: `{fromWalletId, toWalletId, amount}`.
public struct TransferRequest: Sendable, Equatable {
    public static let from = Field.required("fromWalletId", .uuid)
    public static let to = Field.required("toWalletId", .uuid)
    public static let shape = ObjectShape([from, to, Amount.field])

    public let from: WalletID
    public let to: WalletID
    public let amount: Amount

    public init(_ body: JSONValue) throws {
        let input = try Self.shape.validate(body)
        from = try input.id(Self.from)
        to = try input.id(Self.to)
        amount = try Amount.parse(input)
    }
}
