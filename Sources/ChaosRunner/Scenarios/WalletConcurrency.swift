import Foundation
import Synchronization

/// Many clients debiting and crediting a few wallets at once, most of them one hot wallet; some debits are sent
/// twice at the same moment with one Idempotency-Key; some clients try to take money from someone else's wallet.
final class WalletConcurrencyScenario: Scenario {
    let scenario = ScenarioName.walletConcurrency
    let chaos: ChaosPlan? = nil
    static let opening: Int64 = 200_000

    private let setup = Mutex(Accounts())
    private let book = MoneyBook()
    /// Keys whose two simultaneous sends both took effect (never expected), and replays answered.
    private let duplicates = Mutex<[String]>([])
    private let replays = Mutex(0)
    private let intrusions = Intrusions()

    func prepare(_ context: ScenarioContext) async throws {
        let accounts = try await context.accounts(4, label: "wallet", opening: Self.opening)
        setup.withLock { $0 = accounts }
    }

    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        let state = setup.withLock { $0 }
        let index = random.chance(0.6) ? 0 : Int.random(in: 0..<state.wallets.count, using: &random)
        let wallet = state.wallets[index]
        let owner = state.members[index]
        let roll = Double.random(in: 0..<1, using: &random)
        let amount = Int64.random(in: 1...4_000, using: &random)
        let key = context.key(&random, "wc-")
        if roll < 0.45 {
            let reply = try await context.idempotent(.POST, "/api/wallets/\(wallet)/debit", key: key, token: owner.token,
                                                     body: ["amount": .integer(amount)], refusals: ["insufficient_funds"])
            book.settle(reply, wallet, -amount)
        } else if roll < 0.75 {
            let reply = try await context.idempotent(.POST, "/api/wallets/\(wallet)/credit", key: key,
                                                     body: ["amount": .integer(amount), "reference": "chaos top-up"])
            book.settle(reply, wallet, amount)
        } else if roll < 0.9 {
            // The same debit twice at once: it must take effect once; the other answer is a replay or "in use".
            async let first = context.call(.POST, "/api/wallets/\(wallet)/debit", token: owner.token, body: ["amount": .integer(amount)],
                                           headers: ["Idempotency-Key": key], refusals: ["insufficient_funds", "idempotency_key_in_use"])
            async let second = context.call(.POST, "/api/wallets/\(wallet)/debit", token: owner.token, body: ["amount": .integer(amount)],
                                            headers: ["Idempotency-Key": key], refusals: ["insufficient_funds", "idempotency_key_in_use"])
            let answers = try await [first, second]
            let effects = answers.filter { $0?.isSuccess == true && $0?.replayed == false }.count
            replays.withLock { $0 += answers.filter { $0?.replayed == true || $0?.errorCode == "idempotency_key_in_use" }.count }
            if effects > 1 { duplicates.withLock { $0.append(key) } }
            if effects >= 1 {
                book.acknowledged(wallet, -amount * Int64(effects))
            } else if answers.contains(where: { $0 == nil }) || answers.allSatisfy({ $0?.errorCode == "idempotency_key_in_use" }) {
                // No answer, or both "in use": the effect is unknown until the key is asked once more.
                let settled = try await context.idempotent(.POST, "/api/wallets/\(wallet)/debit", key: key, token: owner.token,
                                                           body: ["amount": .integer(amount)], refusals: ["insufficient_funds"])
                book.settle(settled, wallet, -amount)
            }
        } else {
            // Someone else's wallet: must be refused (404, as if it did not exist).
            let intruder = state.members[(index + 1) % state.members.count]
            intrusions.tried()
            let reply = try await context.call(.POST, "/api/wallets/\(wallet)/debit", token: intruder.token,
                                               body: ["amount": .integer(amount)], refusals: ["404", "403"])
            if reply?.isSuccess == true {
                intrusions.accepted("\(wallet) debited by a member who does not own it")
                book.acknowledged(wallet, -amount)
            }
        }
    }

    func check(_ context: ScenarioContext) async throws -> [Check] {
        let wallets = setup.withLock { $0.wallets }
        let states = try await WalletAudit.read(wallets, context)
        var checks = WalletAudit.checks(states, context) + [WalletAudit.told(states, book: book, opening: Self.opening, context)]
        let duplicated = duplicates.withLock { $0 }
        checks.append(Check(scenario: name, invariant: "I9", name: "a key sent twice at once takes effect once",
                            holds: duplicated.isEmpty,
                            figures: [Figure("second sends answered replay or in-use", replays.withLock { $0 }), Figure("applied twice", duplicated.count)],
                            detail: "keys applied twice: " + duplicated.prefix(5).joined(separator: ", ")))
        checks.append(intrusions.check(name))
        return checks
    }
}
