import BallastWire
import Commerce
import DomainValues
import Foundation
import HTTPTypes
import Hummingbird
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
