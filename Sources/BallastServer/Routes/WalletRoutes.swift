import DomainValues
import Foundation
import HTTPTypes
import Hummingbird
import Marketplace
import NIOCore

/// Wallets, their ledger and transfers (SPEC §3, §4).
struct WalletRoutes<Context: BallastRequestContext> {
    let wallets: WalletService
    let commands: WalletCommands

    func register(on router: Router<Context>) {
        router.post("/api/wallets") { request, context in
            let caller = try context.requireUser()
            let new = try NewWalletRequest(try await request.jsonBody())
            let wallet = try await wallets.create(owner: caller, currency: new.currency)
            return try JSONResponse.make(.created, WalletBody(wallet))
        }
        router.get("/api/wallets/{id}") { _, context in
            let caller = try context.requireUser()
            let id = try WalletID.parsePath(context.parameters.get("id") ?? "", "wallet")
            return try JSONResponse.make(.ok, WalletBody(try await wallets.wallet(id, for: caller, requestId: context.requestId)))
        }
        router.post("/api/wallets/{id}/credit") { request, context in
            let caller = try context.requireAdmin()
            let id = try WalletID.parsePath(context.parameters.get("id") ?? "", "wallet")
            return CommandHTTP.response(try await commands.credit(id, try await CommandHTTP.command(request), by: caller) {
                try CommandHTTP.render(MovementBody($0))
            })
        }
        router.post("/api/wallets/{id}/debit") { request, context in
            let caller = try context.requireUser()
            let id = try WalletID.parsePath(context.parameters.get("id") ?? "", "wallet")
            return CommandHTTP.response(try await commands.debit(id, try await CommandHTTP.command(request), by: caller) {
                try CommandHTTP.render(MovementBody($0))
            })
        }
        router.post("/api/transfers") { request, context in
            let caller = try context.requireUser()
            return CommandHTTP.response(try await commands.transfer(try await CommandHTTP.command(request), by: caller) {
                try CommandHTTP.render(TransferBody($0, caller: caller))
            })
        }
        router.get("/api/wallets/{id}/transactions") { request, context in
            let caller = try context.requireUser()
            let id = try WalletID.parsePath(context.parameters.get("id") ?? "", "wallet")
            let list = try ListQuery(request, cursor: ListQuery.sequenceCursor)
            let before = list.sequenceCursor()
            let page = try await wallets.transactions(
                id, for: caller, beforeEntryNo: before, limit: list.limit, requestId: context.requestId)
            return try JSONResponse.make(.ok, Page(items: page.entries.map(LedgerEntryBody.init), nextCursor: page.next.map { String($0) }))
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
        balance = wallet.balanceMinor
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
        amount = entry.amountMinor
        balanceAfter = entry.balanceAfterMinor
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

/// A transfer as its caller may see it: the source wallet in full (the caller owns it, or is an admin), the
/// target in full only for its owner or an admin, otherwise its id alone (SPEC I11: nothing of another user's
/// wallet is shown).
struct TransferBody: Encodable, Sendable {
    let id: String
    let amount: Int64
    let from: WalletBody
    let to: Target

    enum Target: Encodable, Sendable {
        case wallet(WalletBody)
        case idOnly(String)

        func encode(to encoder: any Encoder) throws {
            switch self {
            case .wallet(let wallet): try wallet.encode(to: encoder)
            case .idOnly(let id):
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(id, forKey: .id)
            }
        }

        enum CodingKeys: String, CodingKey { case id }
    }

    init(_ transfer: TransferResult, caller: User) {
        id = transfer.id.description
        amount = transfer.amountMinor
        from = WalletBody(transfer.from)
        to = caller.isAdmin || transfer.to.ownerId == caller.id
            ? .wallet(WalletBody(transfer.to)) : .idOnly(transfer.to.id.description)
    }
}
