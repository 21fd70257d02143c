import Foundation
import Synchronization

/// Random transfers between members' wallets (each by the owner of the source), with withdrawals, top-ups and
/// transfers attempted from someone else's wallet. Money only moves: the total is what came in minus what went out.
final class BankScenario: Scenario {
    let scenario = ScenarioName.bank
    let chaos: ChaosPlan? = nil
    static let opening: Int64 = 50_000
    static let accounts = 8

    private let setup = Mutex(Accounts())
    private let book = MoneyBook()
    /// External money acknowledged in and out, and whether any movement's outcome is unknown.
    private let external = Mutex((topUps: Int64(0), withdrawals: Int64(0), unknown: false))
    private let transfers = Mutex((ok: 0, refused: 0))
    private let intrusions = Intrusions()

    func prepare(_ context: ScenarioContext) async throws {
        let accounts = try await context.accounts(Self.accounts, label: "bank", opening: Self.opening)
        setup.withLock { $0 = accounts }
    }

    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        let state = setup.withLock { $0 }
        let from = Int.random(in: 0..<state.wallets.count, using: &random)
        var to = Int.random(in: 0..<(state.wallets.count - 1), using: &random)
        if to >= from { to += 1 }
        let roll = Double.random(in: 0..<1, using: &random)
        let key = context.key(&random, "bank-")
        let source = state.wallets[from]
        let target = state.wallets[to]
        if roll < 0.75 {
            let amount = Int64.random(in: 1...25_000, using: &random)
            let reply = try await context.idempotent(
                .POST, "/api/transfers", key: key, token: state.members[from].token,
                body: ["fromWalletId": .string(source), "toWalletId": .string(target), "amount": .integer(amount)],
                refusals: ["insufficient_funds"])
            book.settle(reply, source, -amount)
            book.settle(reply, target, amount)
            if let reply { transfers.withLock { if reply.isSuccess { $0.ok += 1 } else { $0.refused += 1 } } }
        } else if roll < 0.83 {
            let amount = Int64.random(in: 1...5_000, using: &random)
            let reply = try await context.idempotent(.POST, "/api/wallets/\(source)/debit", key: key, token: state.members[from].token,
                                                     body: ["amount": .integer(amount)], refusals: ["insufficient_funds"])
            externalMove(reply, source, -amount)
        } else if roll < 0.9 {
            let amount = Int64.random(in: 1...5_000, using: &random)
            let reply = try await context.idempotent(.POST, "/api/wallets/\(source)/credit", key: key,
                                                     body: ["amount": .integer(amount), "reference": "chaos top-up"])
            externalMove(reply, source, amount)
        } else {
            // A member moving money out of a wallet that is not theirs.
            let amount = Int64.random(in: 1...1_000, using: &random)
            let reply = try await context.call(
                .POST, "/api/transfers", token: state.members[to].token,
                body: ["fromWalletId": .string(source), "toWalletId": .string(target), "amount": .integer(amount)],
                refusals: ["404", "403"])
            intrusions.tried()
            if reply?.isSuccess == true {
                intrusions.accepted("transfer from \(source) by the owner of \(target)")
                book.acknowledged(source, -amount)
                book.acknowledged(target, amount)
            }
        }
    }

    /// Money in or out of the system (a top-up or a withdrawal).
    private func externalMove(_ reply: Reply?, _ wallet: String, _ delta: Int64) {
        book.settle(reply, wallet, delta)
        external.withLock { external in
            guard let reply else { return external.unknown = true }
            guard reply.isSuccess else { return }
            if delta > 0 { external.topUps += delta } else { external.withdrawals -= delta }
        }
    }

    func check(_ context: ScenarioContext) async throws -> [Check] {
        let wallets = setup.withLock { $0.wallets }
        let states = try await WalletAudit.read(wallets, context)
        var checks = WalletAudit.checks(states, context) + [WalletAudit.told(states, book: book, opening: Self.opening, context)]
        let money = external.withLock { $0 }
        let total = states.reduce(Int64(0)) { $0.saturatingAdding($1.balance) }
        let expected = Self.opening * Int64(wallets.count) + money.topUps - money.withdrawals
        let moved = transfers.withLock { $0 }
        checks.append(Check(
            scenario: name, invariant: "I2", name: "money is conserved across wallets", holds: total == expected,
            figures: [Figure("sum of balances", total), Figure("in - out", expected), Figure("transfers", moved.ok),
                      Figure("refused", moved.refused)],
            detail: "the wallets hold \(total) but \(expected) came in and did not go out", undecided: money.unknown))
        checks.append(intrusions.check(name))
        return checks
    }
}
