import BallastCore
import Foundation
import NIOCore
import Synchronization

/// The connection pool saturated on purpose: every worker sends its debits and credits in pairs at once to one hot
/// wallet, so the server has about twice the workload's concurrency in flight on one row, far more than its
/// connections (10 by default): most requests queue for a connection behind the row lock. Every request must get
/// an answer (applied, refused for funds, or 503 with Retry-After, then sent again with its key until it is applied
/// exactly once) and never another 5xx or silence; afterwards the money adds up to what clients were told, and once
/// the load is gone single requests are served again.
final class PoolExhaustionScenario: Scenario {
    let scenario = ScenarioName.poolExhaustion
    let chaos: ChaosPlan? = nil
    // Small enough that debits are refused for funds now and then: refusals travel the saturated path too.
    static let opening: Int64 = 20_000
    /// How often a request answered 503 is sent again with its key (after its Retry-After) before giving up.
    static let maximumSends = 20
    /// How many reads, one after the other, must all be served once the load is gone.
    static let recoveryReads = 20
    /// How long each request may take: longer than a server lets a request wait for a connection (30 s) before it
    /// answers 503, so a request queued behind the saturated pool gets its answer instead of counting as unanswered.
    static let answerWithin: TimeAmount = .seconds(45)

    private let setup = Mutex(Accounts())
    private let book = MoneyBook()
    private let answers = Mutex(Answers())

    struct Answers {
        var sent = 0
        var unavailable = 0
        /// A 503 without Retry-After, or any other 5xx.
        var bad: [String] = []
        /// Requests still refused with 503 after every resend.
        var givenUp = 0
    }

    func prepare(_ context: ScenarioContext) async throws {
        let accounts = try await context.accounts(1, label: "pool", opening: Self.opening)
        setup.withLock { $0 = accounts }
    }

    func operation(_ number: Int, _ random: inout SeededRandom, _ context: ScenarioContext) async throws {
        let state = setup.withLock { $0 }
        let wallet = state.wallets[0], owner = state.members[0]
        let first = (key: context.key(&random, "px-"), amount: Int64.random(in: 1...500, using: &random), debit: random.chance(0.7))
        let second = (key: context.key(&random, "px-"), amount: Int64.random(in: 1...500, using: &random), debit: random.chance(0.7))
        async let one: Void = move(wallet, owner: owner.token, first.key, first.amount, debit: first.debit, context)
        async let two: Void = move(wallet, owner: owner.token, second.key, second.amount, debit: second.debit, context)
        _ = try await (one, two)
    }

    /// One keyed debit (by the owner) or credit (by the admin), sent again with its key after each 503 until it is
    /// answered otherwise; no answer at all is sent again the same way (`idempotent`).
    private func move(_ wallet: String, owner: String, _ key: String, _ amount: Int64, debit: Bool, _ context: ScenarioContext) async throws {
        let path = "/api/wallets/\(wallet)/" + (debit ? "debit" : "credit")
        let body: JSONValue = ["amount": .integer(amount)]
        let token: String?? = debit ? .some(owner) : nil
        for _ in 0..<Self.maximumSends {
            let reply = try await context.idempotent(.POST, path, key: key, token: token, body: body,
                                                     refusals: ["insufficient_funds", "service_unavailable"],
                                                     timeout: Self.answerWithin)
            answers.withLock { $0.sent += 1 }
            guard let reply else { return book.unknown(wallet, debit ? -amount : amount) }
            if reply.status >= 500 {
                let retryAfter = reply.headers["retry-after"].flatMap { Int($0) }
                guard reply.status == 503, let retryAfter else {
                    answers.withLock { $0.bad.append("\(reply.status) \(reply.errorCode ?? "") on \(path)") }
                    return book.unknown(wallet, debit ? -amount : amount)
                }
                answers.withLock { $0.unavailable += 1 }
                try await Task.sleep(for: .seconds(min(max(retryAfter, 0), 2)))
                continue
            }
            return book.settle(reply, wallet, debit ? -amount : amount)
        }
        answers.withLock { $0.givenUp += 1 }
        book.unknown(wallet, debit ? -amount : amount)
    }

    func check(_ context: ScenarioContext) async throws -> [Check] {
        let state = setup.withLock { $0 }
        var recovered = 0
        for _ in 0..<Self.recoveryReads {
            let reply = try? await context.api.send(.GET, "/api/wallets/\(state.wallets[0])", token: .some(state.members[0].token))
            if reply?.status == 200 { recovered += 1 }
        }
        let states = try await WalletAudit.read(state.wallets, context)
        let seen = answers.withLock { $0 }
        return WalletAudit.checks(states, context) + [
            WalletAudit.told(states, book: book, opening: Self.opening, context),
            Check(scenario: name, invariant: "§3", name: "a saturated pool answers every request: applied, refused, or 503 with Retry-After",
                  holds: seen.bad.isEmpty,
                  figures: [Figure("sends", seen.sent), Figure("503 with Retry-After", seen.unavailable),
                            Figure("other 5xx or 503 without Retry-After", seen.bad.count),
                            Figure("still 503 after \(Self.maximumSends) sends", seen.givenUp)],
                  detail: seen.bad.prefix(5).joined(separator: "; ")),
            Check(scenario: name, invariant: "§3", name: "once the load is gone, requests are served again",
                  holds: recovered == Self.recoveryReads,
                  figures: [Figure("reads one after the other", Self.recoveryReads), Figure("served", recovered)]),
        ]
    }
}
