import Foundation
import HTTPTypes
import Hummingbird
import Marketplace
import NIOCore
import SQLKit

/// Wallets, their ledger and transfers (SPEC §3, §4).
struct WalletRoutes<Context: BallastRequestContext> {
    let wallets: WalletService
    let idempotent: IdempotentEffect

    func register(on router: Router<Context>) {
        router.post("/api/wallets") { request, context in
            let caller = try context.requireUser()
            let input = try await request.jsonObject()
            var currency = Currency.usd
            if let code = try input.optionalString("currency", maxLength: 3) {
                guard let parsed = Currency(code) else {
                    throw AppError.invalidField("currency", "currency must be three upper-case letters, e.g. USD")
                }
                currency = parsed
            }
            let wallet = try await wallets.create(owner: caller, currency: currency)
            return try JSONResponse.make(.created, WalletBody(wallet))
        }
        router.get("/api/wallets/{id}") { _, context in
            let caller = try context.requireUser()
            let id = try WalletID.parsePath(context.parameters.get("id") ?? "", "wallet")
            return try JSONResponse.make(.ok, WalletBody(try await wallets.wallet(id, for: caller)))
        }
        router.post("/api/wallets/{id}/credit") { request, context in
            try await movement(request, context, caller: try context.requireAdmin(), apply: wallets.credit)
        }
        router.post("/api/wallets/{id}/debit") { request, context in
            try await movement(request, context, caller: try context.requireUser(), apply: wallets.debit)
        }
        router.post("/api/transfers") { request, context in
            let caller = try context.requireUser()
            let input = try await request.jsonObject()
            let from = try WalletID.parseField(input, "fromWalletId")
            let to = try WalletID.parseField(input, "toWalletId")
            let amount = try Amount.parse(input)
            return try await idempotent.respond(to: request, caller: caller, input: input, status: .created) { sql in
                TransferBody(try await wallets.transfer(from: from, to: to, amount: amount, by: caller, in: sql))
            }
        }
        router.get("/api/wallets/{id}/transactions") { request, context in
            let caller = try context.requireUser()
            let id = try WalletID.parsePath(context.parameters.get("id") ?? "", "wallet")
            let list = try ListQuery(request)
            let before = list.cursor == nil ? nil : try list.sequenceCursor()
            let page = try await wallets.transactions(id, for: caller, beforeEntryNo: before, limit: list.limit)
            return try JSONResponse.make(.ok, Page(items: page.entries.map(LedgerEntryBody.init), nextCursor: page.next.map { String($0) }))
        }
    }
}

extension WalletRoutes {
    typealias Apply = @Sendable (WalletID, Amount, String?, User, any SQLDatabase) async throws -> WalletMovement

    /// A credit or a debit: `{amount, reference?}` on the wallet in the path, idempotent when keyed.
    func movement(_ request: Request, _ context: Context, caller: User, apply: @escaping Apply) async throws -> Response {
        let id = try WalletID.parsePath(context.parameters.get("id") ?? "", "wallet")
        let input = try await request.jsonObject()
        let amount = try Amount.parse(input)
        let reference = try input.optionalString("reference", maxLength: 200)
        return try await idempotent.respond(to: request, caller: caller, input: input, status: .ok) { sql in
            MovementBody(try await apply(id, amount, reference, caller, sql))
        }
    }
}

struct WalletBody: Encodable, Sendable {
    let id: String
    let ownerId: String
    let currency: String
    let balance: Int64
    let createdAt: Date

    init(_ wallet: Wallet) {
        id = wallet.id.description
        ownerId = wallet.ownerId.description
        currency = wallet.currency.code
        balance = wallet.balance
        createdAt = wallet.createdAt
    }
}

struct LedgerEntryBody: Encodable, Sendable {
    let id: String
    let kind: String
    let amount: Int64
    let balanceAfter: Int64
    @Null var reference: String?
    let createdAt: Date

    init(_ entry: LedgerEntry) {
        id = entry.id.description
        kind = entry.kind.rawValue
        amount = entry.amount
        balanceAfter = entry.balanceAfter
        reference = entry.reference
        createdAt = entry.createdAt
    }
}

struct MovementBody: Encodable, Sendable {
    let wallet: WalletBody
    let transaction: LedgerEntryBody

    init(_ movement: WalletMovement) {
        wallet = WalletBody(movement.wallet)
        transaction = LedgerEntryBody(movement.entry)
    }
}

struct TransferBody: Encodable, Sendable {
    let id: String
    let amount: Int64
    let from: WalletBody
    let to: WalletBody

    init(_ transfer: TransferResult) {
        id = transfer.id.description
        amount = transfer.amount
        from = WalletBody(transfer.from)
        to = WalletBody(transfer.to)
    }
}
