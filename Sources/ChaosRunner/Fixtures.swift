import BallastWire
import Foundation
import NIOHTTP1
import Synchronization

/// A user the scenario created, with its token.
struct Member: Sendable {
    let id: String
    let token: String
}

/// Members with one USD wallet each (`wallets[i]` belongs to `members[i]`).
struct Accounts: Sendable {
    var members: [Member] = []
    var wallets: [String] = []
}

/// Set-up steps every scenario shares: users, wallets with money, active products.
extension ScenarioContext {
    /// `count` members, each with a wallet topped up with `opening`.
    func accounts(_ count: Int, label: String, opening: Int64) async throws -> Accounts {
        let created = try await concurrentMap(Array(0..<count), width: 8) { index in
            let member = try await createMember("\(label)-\(index)")
            let wallet = try await openWallet(for: member)
            try await topUp(wallet, opening)
            return (member, wallet)
        }
        return Accounts(members: created.map(\.0), wallets: created.map(\.1))
    }

    func createMember(_ label: String) async throws -> Member {
        let created = try await api.expect("create user \(label)", .POST, "/api/users", as: CreatedUser.self,
                                           body: ["name": .string("chaos-\(runTag)-\(label)"), "role": "member"])
        return Member(id: created.user.id, token: created.token)
    }

    func openWallet(for member: Member) async throws -> String {
        try await api.expect("open a wallet", .POST, "/api/wallets", as: WalletBody.self, token: member.token,
                             body: ["currency": "USD"]).id
    }

    /// An external top-up by the admin (not part of the workload's figures).
    func topUp(_ wallet: String, _ amount: Int64) async throws {
        _ = try await expect("top up a wallet", .POST, "/api/wallets/\(wallet)/credit",
                             body: ["amount": .integer(amount), "reference": .string("chaos run \(runTag) set-up")])
    }

    /// A product created by `seller` and published.
    func activeProduct(seller: Member, sku: String, price: Int64, stock: Int64) async throws -> String {
        let id = try await api.expect("create a product", .POST, "/api/products", as: ProductBody.self, token: seller.token, body: [
            "sku": .string("chaos-\(runTag)-\(sku)"), "name": .string("Chaos \(sku)"), "price": .integer(price),
            "stock": .integer(stock),
        ]).id
        _ = try await expect("publish a product", .POST, "/api/products/\(id)/publish", token: seller.token)
        return id
    }
}

/// What clients were told about each wallet: effects acknowledged with 2xx, and effects whose outcome is unknown
/// because no answer came.
final class MoneyBook: Sendable {
    struct Entry: Sendable {
        var known: Int64 = 0
        var unknownIn: Int64 = 0
        var unknownOut: Int64 = 0
    }

    private let entries = Mutex<[String: Entry]>([:])

    /// Deltas come from the target's answers (an order's total): every sum saturates instead of trapping.
    func acknowledged(_ wallet: String, _ delta: Int64) {
        entries.withLock { $0[wallet, default: Entry()].known = $0[wallet, default: Entry()].known.saturatingAdding(delta) }
    }

    func unknown(_ wallet: String, _ delta: Int64) {
        entries.withLock {
            var entry = $0[wallet, default: Entry()]
            if delta > 0 {
                entry.unknownIn = entry.unknownIn.saturatingAdding(delta)
            } else {
                entry.unknownOut = entry.unknownOut.saturatingSubtracting(delta)
            }
            $0[wallet] = entry
        }
    }

    /// An effect of `delta` on `wallet` as its answer tells: applied on 2xx, unknown when no answer came.
    func settle(_ reply: Reply?, _ wallet: String, _ delta: Int64) {
        guard let reply else { return unknown(wallet, delta) }
        if reply.isSuccess { acknowledged(wallet, delta) }
    }

    func entry(_ wallet: String) -> Entry { entries.withLock { $0[wallet] ?? Entry() } }
    var hasUnknown: Bool { entries.withLock { $0.values.contains { $0.unknownIn != 0 || $0.unknownOut != 0 } } }
}

/// Attempts to move money out of someone else's wallet, and any the target accepted (I11).
final class Intrusions: Sendable {
    private let state = Mutex((tried: 0, accepted: [String]()))

    func tried() { state.withLock { $0.tried += 1 } }
    func accepted(_ what: String) { state.withLock { $0.accepted.append(what) } }

    func check(_ scenario: String) -> Check {
        let (tried, accepted) = state.withLock { ($0.tried, $0.accepted) }
        return Check(scenario: scenario, invariant: "I11", name: "no member moves another's money", holds: accepted.isEmpty,
                     figures: [Figure("attempts", tried), Figure("accepted", accepted.count)],
                     detail: accepted.prefix(5).joined(separator: "; "))
    }
}

/// One wallet as the API shows it at the end: balance, and its ledger summed.
struct WalletState: Sendable {
    let id: String
    let balance: Int64
    let credits: Int64
    let debits: Int64
    let entries: Int
    /// Ledger references (order payments are `order:<id>`, refunds `refund:order:<id>`).
    let references: [String]
}

enum WalletAudit {
    /// Reads every wallet and its whole ledger (admin token).
    static func read(_ wallets: [String], _ context: ScenarioContext) async throws -> [WalletState] {
        try await concurrentMap(wallets, width: context.concurrency) { id in
            let wallet = try await context.api.expect("read a wallet", .GET, "/api/wallets/\(id)", as: WalletBody.self)
            let ledger = try await context.api.all("read a ledger", "/api/wallets/\(id)/transactions", of: LedgerEntryBody.self)
            var credits: Int64 = 0
            var debits: Int64 = 0
            for entry in ledger {
                if entry.kind == "credit" {
                    credits = credits.saturatingAdding(entry.amount)
                } else {
                    debits = debits.saturatingAdding(entry.amount)
                }
            }
            return WalletState(id: id, balance: wallet.balance, credits: credits, debits: debits,
                               entries: ledger.count, references: ledger.compactMap(\.reference))
        }
    }

    /// I1 and I2 for each wallet: never below zero, balance = its ledger.
    static func checks(_ states: [WalletState], _ context: ScenarioContext) -> [Check] {
        let scenario = context.scenario
        let negative = states.filter { $0.balance < 0 }
        let unbalanced = states.filter { $0.balance != $0.credits.saturatingSubtracting($0.debits) }
        return [
            Check(scenario: scenario, invariant: "I1", name: "no wallet below zero", holds: negative.isEmpty,
                  figures: [Figure("wallets", states.count), Figure("negative", negative.count)],
                  detail: negative.prefix(5).map { "wallet \($0.id) balance \($0.balance)" }.joined(separator: "; ")),
            Check(scenario: scenario, invariant: "I2", name: "every balance equals its ledger", holds: unbalanced.isEmpty,
                  figures: [Figure("wallets", states.count), Figure("ledger entries", states.reduce(0) { $0 + $1.entries }),
                            Figure("mismatched", unbalanced.count)],
                  detail: unbalanced.prefix(5).map { "wallet \($0.id): balance \($0.balance), ledger credits \($0.credits) - debits \($0.debits) = \($0.credits.saturatingSubtracting($0.debits))" }
                      .joined(separator: "; ")),
        ]
    }

    /// Each balance against `opening` plus what `book` says clients were told; inconclusive when only effects
    /// of unanswered requests could explain the difference.
    static func told(
        _ states: [WalletState], book: MoneyBook, opening: Int64, _ context: ScenarioContext,
        invariant: String = "I5/I9", name: String = "balances equal what clients were told"
    ) -> Check {
        var off: [String] = []
        var undecided = false
        for state in states {
            let entry = book.entry(state.id)
            let expected = opening.saturatingAdding(entry.known)
            guard state.balance != expected else { continue }
            let low = expected.saturatingSubtracting(entry.unknownOut), high = expected.saturatingAdding(entry.unknownIn)
            if low <= high, (low...high).contains(state.balance) { undecided = true; continue }
            off.append("wallet \(state.id): balance \(state.balance), acknowledged \(expected)")
        }
        return Check(
            scenario: context.scenario, invariant: invariant, name: name, holds: off.isEmpty && !undecided,
            figures: [Figure("wallets", states.count), Figure("off", off.count),
                      Figure("unknown outcomes", book.hasUnknown ? "yes" : "no")],
            detail: off.isEmpty ? "some requests got no answer, so their effect cannot be decided" : off.prefix(5).joined(separator: "; "),
            undecided: off.isEmpty)
    }
}
