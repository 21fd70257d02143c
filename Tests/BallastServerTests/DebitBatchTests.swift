import BallastTestSupport
import DomainValues
import Foundation
import HTTPTypes
@testable import Commerce
import Storage
import Synchronization
import Testing

/// Debits without a key share statements on PostgreSQL (`WalletService.debitAlone`): each must still get the
/// answer it would get alone, and the money must add up exactly.
@Suite("Batched debits", .timeLimit(.minutes(10)))
struct DebitBatchTests {
    final class Counter: Sendable {
        private let count = Atomic<Int>(0)
        func add() { count.add(1, ordering: .releasing) }
        var value: Int { count.load(ordering: .acquiring) }
    }

    final class Flag: Sendable {
        private let flag = Atomic<Bool>(false)
        func set() { flag.store(true, ordering: .releasing) }
        var value: Bool { flag.load(ordering: .acquiring) }
    }

    /// The user `token` belongs to, as the service sees a caller.
    static func user(_ app: TestApp, _ token: String, role: Role = .member) async throws -> User {
        let me = try await app.request(.get, "/api/users/me", token: token)
        return User(id: try #require(UserID(me.json["id"] as? String ?? "")), name: "caller", role: role, createdAt: Date())
    }

    /// 600 concurrent debits of 10 over 20 wallets of 100 (four owners, five wallets each), with references on two in
    /// three and one in fifteen sent by a user who does not own the wallet. Exactly ten debits of each wallet are
    /// taken; each answer names its own wallet and its own reference; each wallet's taken answers show the balances
    /// 90, 80, … 0 once each; every foreign debit is 404 and the rest 409. (Whether debits share statements here
    /// depends on how fast they arrive; `oneStatementAnswersEachDebitOfABatch` runs a batch for certain.)
    @Test(arguments: TestStores.kinds)
    func sixHundredSpreadDebitsEachGetTheirOwnAnswer(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            var owners: [String] = []
            var wallets: [(id: String, owner: String)] = []
            for _ in 0..<4 {
                let owner = try await app.createUser()
                owners.append(owner)
                for _ in 0..<5 {
                    let wallet = try await app.openWallet(token: owner)
                    try await app.credit(wallet, 100)
                    wallets.append((wallet, owner))
                }
            }
            struct Answer: Sendable {
                let index: Int
                let status: UInt
                let wallet: String?
                let reference: String??
                let amount: Int?
                let balance: Int?
                let balanceAfter: Int?
            }
            let walletList = wallets
            let ownerList = owners
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for index in 0..<600 {
                    let (wallet, owner) = walletList[index % walletList.count]
                    let token = index % 15 == 7 ? ownerList.first { $0 != owner }! : owner
                    let body = index % 3 == 0 ? #"{"amount":10}"# : #"{"amount":10,"reference":"debit-\#(index)"}"#
                    group.addTask {
                        let reply = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: token, body: body)
                        let movement = reply.json
                        let entry = movement["transaction"] as? [String: Any]
                        let state = movement["wallet"] as? [String: Any]
                        let reference: String?? = entry.map { $0["reference"] as? String }
                        return Answer(index: index, status: UInt(reply.status.code), wallet: state?["id"] as? String,
                                      reference: reference, amount: entry?["amount"] as? Int, balance: state?["balance"] as? Int,
                                      balanceAfter: entry?["balanceAfter"] as? Int)
                    }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(answers.count == 600)
            var takenPerWallet: [String: [Int]] = [:]
            for answer in answers {
                let (wallet, _) = walletList[answer.index % walletList.count]
                if answer.index % 15 == 7 {
                    #expect(answer.status == 404, "foreign debit \(answer.index)")
                    continue
                }
                #expect(answer.status == 200 || answer.status == 409, "debit \(answer.index): \(answer.status)")
                guard answer.status == 200 else { continue }
                #expect(answer.wallet == wallet, "debit \(answer.index) answered for its own wallet")
                let sent: String? = answer.index % 3 == 0 ? nil : "debit-\(answer.index)"
                #expect(answer.reference == .some(sent), "debit \(answer.index) answered with its own reference")
                #expect(answer.amount == 10)
                #expect(answer.balance == answer.balanceAfter)
                takenPerWallet[wallet, default: []].append(answer.balanceAfter ?? -1)
            }
            for (wallet, _) in walletList {
                #expect(takenPerWallet[wallet]?.sorted() == Array(stride(from: 0, through: 90, by: 10)), "wallet \(wallet)")
                #expect(try await app.balance(wallet) == 0)
                #expect(try await app.ledgerSum(wallet) == 0)
                #expect(try await app.ledgerCount(wallet) == 11)
            }
            #expect(answers.filter { $0.status == 200 }.count == 200)
            #expect(answers.filter { $0.status == 409 }.count == 600 - 40 - 200)
        }
    }

    /// One batch of 12 debits, each of another wallet, run as one statement: each gets exactly its own row, or
    /// none when its wallet row does not qualify (too little money; a wallet the caller does not own, unless the
    /// caller is an admin), with its own amount, reference (or none) and the balance after it; the ledger rows all
    /// carry the batch's one timestamp, and nothing else changed.
    @Test(.enabled(if: TestStores.kinds.contains(.postgres)))
    func oneStatementAnswersEachDebitOfABatch() async throws {
        try await TestApp.run(.postgres) { app in
            let ownerToken = try await app.createUser(), otherToken = try await app.createUser()
            let owner = try await Self.user(app, ownerToken), other = try await Self.user(app, otherToken)
            let admin = try await Self.user(app, TestApp.adminToken, role: .admin)
            var ids: [WalletID] = []
            for _ in 0..<12 {
                let wallet = try await app.openWallet(token: ownerToken)
                try await app.credit(wallet, 50)
                ids.append(try #require(WalletID(wallet)))
            }
            // Debit n takes 10 + n; 51 + n (more than the 50 held) for n = 3, 7; by a stranger for n = 5, 9; by an
            // admin for n = 10; no reference for even n.
            let debits = ids.enumerated().map { n, id in
                WalletService.Debit(wallet: id, amount: Amount(Int64([3, 7].contains(n) ? 51 + n : 10 + n))!,
                                    reference: n % 2 == 0 ? nil : "batch-\(n)",
                                    caller: [5, 9].contains(n) ? other : n == 10 ? admin : owner)
            }
            let results = await WalletService.run(debits, on: app.services.primary)
            try #require(results.count == 12)
            var stamps: Set<Int64> = []
            for (n, result) in results.enumerated() {
                let outcome = try result.get()
                let row: DebitRow? = if case .taken(let row) = outcome { row } else { nil }
                if [3, 5, 7, 9].contains(n) {
                    #expect(row == nil, "debit \(n) took nothing")
                    if case .refused = outcome {} else { Issue.record("debit \(n): \(outcome), not refused") }
                    #expect(try await app.balance(ids[n].description) == 50)
                    continue
                }
                let taken = try #require(row, "debit \(n) was taken")
                #expect(taken.id == ids[n].description)
                #expect(taken.amount == 10 + Int64(n))
                #expect(taken.balance == 40 - Int64(n) && taken.balance_after == taken.balance)
                #expect(taken.reference == (n % 2 == 0 ? nil : "batch-\(n)"))
                #expect(taken.kind == "debit")
                stamps.insert(taken.entry_created_at_micros)
                #expect(try await app.balance(ids[n].description) == 40 - Int64(n))
                #expect(try await app.ledgerSum(ids[n].description) == 40 - Int64(n))
            }
            #expect(stamps.count == 1, "the batch's ledger rows were written by one statement")
        }
    }

    /// A batch never waits for a wallet row another transaction holds: with one wallet's row held for 3 s, a batch of
    /// three answers at once, the two free wallets taken and the held one skipped (its caller runs it alone);
    /// nothing of the held wallet changed. Then, the row let go, a debit of it is taken through the API.
    @Test(.enabled(if: TestStores.kinds.contains(.postgres)))
    func aBatchSkipsAWalletAnotherTransactionHolds() async throws {
        try await TestApp.run(.postgres) { app in
            let token = try await app.createUser()
            let caller = try await Self.user(app, token)
            var ids: [WalletID] = []
            for _ in 0..<3 {
                let wallet = try await app.openWallet(token: token)
                try await app.credit(wallet, 100)
                ids.append(try #require(WalletID(wallet)))
            }
            let held = ids[1].description
            let holding = Flag()
            let holder = Task {
                try await app.services.primary.transaction { sql in
                    try await sql.raw("SELECT id FROM wallets WHERE id = \(bind: held) FOR UPDATE").run()
                    holding.set()
                    try await Task.sleep(for: .seconds(3))
                }
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while !holding.value, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            let took = holding.value
            try #require(took, "the holder took the row")
            let started = ContinuousClock.now
            let debits = ids.map { WalletService.Debit(wallet: $0, amount: Amount(10)!, reference: nil, caller: caller) }
            let results = await WalletService.run(debits, on: app.services.primary)
            let waited = ContinuousClock.now - started
            let answeredWhileHeld = waited < .seconds(2)
            try await holder.value
            #expect(answeredWhileHeld, "the batch answered while the row was held (after \(waited))")
            try #require(results.count == 3)
            for (index, result) in results.enumerated() {
                let outcome = try result.get()
                switch (index, outcome) {
                case (1, .skipped), (0, .taken), (2, .taken): break
                default: Issue.record("debit \(index): \(outcome)")
                }
            }
            #expect(try await app.balance(ids[0].description) == 90)
            #expect(try await app.balance(held) == 100)
            #expect(try await app.ledgerCount(held) == 1)
            let reply = try await app.request(.post, "/api/wallets/\(held)/debit", token: token, body: #"{"amount":10}"#)
            #expect(reply.status == .ok)
            #expect(try await app.balance(held) == 90)
        }
    }

    /// Through the API, a debit its batch skipped is run again alone and answered once its row is free. Four
    /// transactions hold wallets H1…H4. Debits of H1, H2 and H3 take the three runners, each waiting for its row.
    /// Debits of H4 and of two free wallets then queue. H1 is let go at 1 s; its runner's successor leads the batch
    /// [H4, A, B] (in some order): A and B are taken, H4 is skipped and waits alone until H4 is let go at 3 s. Every
    /// debit is answered 200 once, and each wallet lost exactly 10.
    @Test(.enabled(if: TestStores.kinds.contains(.postgres)))
    func aSkippedDebitIsAnsweredOnceItsRowIsFree() async throws {
        try await TestApp.run(.postgres) { app in
            let token = try await app.createUser()
            var wallets: [String] = []
            for _ in 0..<6 {
                let wallet = try await app.openWallet(token: token)
                try await app.credit(wallet, 100)
                wallets.append(wallet)
            }
            let held = Array(wallets[0..<4]), free = Array(wallets[4..<6])
            let holding = Counter()
            let holders = held.enumerated().map { index, wallet in
                Task {
                    try await app.services.primary.transaction { sql in
                        try await sql.raw("SELECT id FROM wallets WHERE id = \(bind: wallet) FOR UPDATE").run()
                        holding.add()
                        try await Task.sleep(for: index == 0 ? .seconds(1) : .seconds(3))
                    }
                }
            }
            let deadline = ContinuousClock.now + .seconds(60)
            while holding.value < 4, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(10)) }
            let took = holding.value
            try #require(took == 4, "the holders took their rows")
            @Sendable func debit(_ wallet: String) async throws -> UInt {
                UInt(try await app.request(.post, "/api/wallets/\(wallet)/debit", token: token, body: #"{"amount":10}"#).status.code)
            }
            let first = held[0..<3].map { wallet in Task { try await debit(wallet) } }
            try await Task.sleep(for: .milliseconds(300))
            let queued = ([held[3]] + free).map { wallet in Task { try await debit(wallet) } }
            var statuses: [UInt] = []
            for task in first + queued { statuses.append(try await task.value) }
            for holder in holders { try await holder.value }
            #expect(statuses == Array(repeating: 200, count: 6))
            for wallet in wallets {
                #expect(try await app.balance(wallet) == 90)
                #expect(try await app.ledgerCount(wallet) == 2)
            }
        }
    }

    /// A batch the server refuses outright (here one debit's reference holds a NUL byte, which PostgreSQL does not
    /// store in text) changed nothing; its debits then run one by one, so only the refused one fails: the others
    /// are taken, each once, and the balances add up.
    @Test(.enabled(if: TestStores.kinds.contains(.postgres)))
    func aRefusedBatchFallsBackToEachDebitAlone() async throws {
        try await TestApp.run(.postgres) { app in
            let token = try await app.createUser()
            let caller = try await Self.user(app, token)
            var ids: [WalletID] = []
            for _ in 0..<5 {
                let wallet = try await app.openWallet(token: token)
                try await app.credit(wallet, 100)
                ids.append(try #require(WalletID(wallet)))
            }
            let debits = ids.enumerated().map { index, id in
                WalletService.Debit(wallet: id, amount: Amount(10 + Int64(index))!,
                                    reference: index == 2 ? "bad\u{0}reference" : "fine-\(index)", caller: caller)
            }
            let results = await WalletService.run(debits, on: app.services.primary)
            try #require(results.count == 5)
            for (index, result) in results.enumerated() {
                switch result {
                case .success(let outcome):
                    let row: DebitRow? = if case .taken(let row) = outcome { row } else { nil }
                    #expect(index != 2, "the debit with a NUL byte was refused")
                    #expect(row?.id == ids[index].description)
                    #expect(row?.amount == 10 + Int64(index))
                    #expect(row?.reference == "fine-\(index)")
                case .failure:
                    #expect(index == 2, "debit \(index) failed for another's sake")
                }
            }
            for (index, id) in ids.enumerated() {
                #expect(try await app.balance(id.description) == (index == 2 ? 100 : 90 - Int64(index)))
                #expect(try await app.ledgerCount(id.description) == (index == 2 ? 1 : 2))
            }
        }
    }
}
