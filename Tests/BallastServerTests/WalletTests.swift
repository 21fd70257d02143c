import BallastServer
import BallastTestSupport
import ChaosKit
import DomainValues
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Commerce
import NIOCore
import SQLKit
import Storage
import Synchronization
import Testing

extension TestApp {
    func openWallet(token: String, currency: String? = nil) async throws -> String {
        let body = currency.map { #"{"currency":"\#($0)"}"# } ?? "{}"
        let reply = try await request(.post, "/api/wallets", token: token, body: body)
        guard reply.status == .created, let id = reply.json["id"] as? String else {
            throw AppError(.internal, "could not open a wallet: \(reply.status) \(reply.body)")
        }
        return id
    }

    func credit(_ wallet: String, _ amount: Int) async throws {
        let reply = try await request(.post, "/api/wallets/\(wallet)/credit", token: TestApp.adminToken, body: #"{"amount":\#(amount)}"#)
        guard reply.status == .ok else { throw AppError(.internal, "credit failed: \(reply.status) \(reply.body)") }
    }

    func balance(_ wallet: String) async throws -> Int64 {
        try await services.primary.read { sql in
            try await sql.raw("SELECT balance FROM wallets WHERE id = \(bind: wallet)").first()!.decode(column: "balance", as: Int64.self)
        }
    }

    /// Credits minus debits of the wallet's ledger.
    func ledgerSum(_ wallet: String) async throws -> Int64 {
        try await services.primary.read { sql in
            try await sql.raw("""
                SELECT CAST(COALESCE(SUM(CASE WHEN kind = 'credit' THEN amount ELSE -amount END), 0) AS BIGINT) AS total
                FROM wallet_transactions WHERE wallet_id = \(bind: wallet)
                """).first()!.decode(column: "total", as: Int64.self)
        }
    }

    func ledgerCount(_ wallet: String) async throws -> Int {
        try await services.primary.read { sql in
            try await sql.raw("SELECT count(*) AS n FROM wallet_transactions WHERE wallet_id = \(bind: wallet)").first()!
                .decode(column: "n", as: Int.self)
        }
    }
}

/// A value shared by concurrent test tasks.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

/// Counts statuses from concurrent requests.
final class StatusTally: Sendable {
    private let counts = Mutex<[UInt: Int]>([:])
    func add(_ status: HTTPResponse.Status) { counts.withLock { $0[UInt(status.code), default: 0] += 1 } }
    subscript(_ code: UInt) -> Int { counts.withLock { $0[code] ?? 0 } }
    var all: [UInt: Int] { counts.withLock { $0 } }
}

@Suite("Wallet concurrency", .timeLimit(.minutes(10)))
struct WalletConcurrencyTests {
    @Test(arguments: TestStores.kinds)
    func threeHundredDebitsOfTenAgainstOneThousand(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let wallet = try await app.openWallet(token: owner)
            try await app.credit(wallet, 1000)
            let tally = StatusTally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<300 {
                    group.addTask {
                        tally.add(try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, body: #"{"amount":10}"#).status)
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.all == [200: 100, 409: 200])
            #expect(try await app.balance(wallet) == 0)
            #expect(try await app.ledgerCount(wallet) == 101)
            #expect(try await app.ledgerSum(wallet) == 0)
        }
    }

    @Test(arguments: TestStores.kinds)
    func twoHundredConcurrentCreditsSumExactly(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let wallet = try await app.openWallet(token: try await app.createUser())
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 1...200 { group.addTask { try await app.credit(wallet, index) } }
                try await group.waitForAll()
            }
            #expect(try await app.balance(wallet) == 20_100)
            #expect(try await app.ledgerSum(wallet) == 20_100)
            #expect(try await app.ledgerCount(wallet) == 200)
        }
    }

    @Test(arguments: TestStores.kinds)
    func oneIdempotencyKeyTakesEffectOnce(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let wallet = try await app.openWallet(token: owner)
            try await app.credit(wallet, 1000)
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "debit-once-1"]
            let tally = StatusTally()
            let bodies = Locked<Set<String>>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<10 {
                    group.addTask {
                        let reply = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, headers: key,
                                                          body: #"{"amount":100,"reference":"once"}"#)
                        tally.add(reply.status)
                        if reply.status == .ok { bodies.withLock { _ = $0.insert(reply.body) } }
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally[200] >= 1)
            #expect(tally[200] + tally[409] == 10, "\(tally.all)")
            #expect(bodies.withLock { $0.count } == 1, "every 200 is the same answer")
            #expect(try await app.balance(wallet) == 900)
            #expect(try await app.ledgerCount(wallet) == 2)

            // Same key and body, after the fact: the first answer again, marked replayed.
            let replay = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, headers: key,
                                               body: #"{ "reference": "once", "amount": 100 }"#)
            #expect(replay.status == .ok)
            #expect(replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(bodies.withLock { $0.contains(replay.body) })
            // Same key, another body.
            let reused = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, headers: key, body: #"{"amount":5}"#)
            #expect(reused.status == .unprocessableContent)
            #expect(reused.errorCode == "idempotency_key_reused")
            // The key is the caller's own: another user may use the same text.
            let other = try await app.createUser(name: "other")
            let otherWallet = try await app.openWallet(token: other)
            try await app.credit(otherWallet, 100)
            let theirs = try await app.request(.post, "/api/wallets/\(otherWallet)/debit", token: other, headers: key, body: #"{"amount":100,"reference":"once"}"#)
            #expect(theirs.status == .ok)
            #expect(theirs.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            #expect(try await app.balance(wallet) == 900)
        }
    }

    /// 1,000 random transfers and debits among 8 wallets of 4 users, from 100 concurrent clients.
    @Test(arguments: TestStores.kinds)
    func randomTransfersAndDebitsConserveMoney(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            var tokens: [String] = []
            var wallets: [(wallet: String, token: String)] = []
            for user in 0..<4 {
                let token = try await app.createUser(name: "user\(user)")
                tokens.append(token)
                for _ in 0..<2 { wallets.append((try await app.openWallet(token: token), token)) }
            }
            for entry in wallets { try await app.credit(entry.wallet, 5_000) }
            let debited = Locked<Int64>(0)
            let tally = StatusTally()
            let plan = wallets
            // 1,000 operations from 100 concurrent clients (10 each), so the test measures correctness under
            // contention rather than how long a CPU-starved debug build can queue 1,000 writers at once.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<100 {
                    group.addTask {
                        var generator = SystemRandomNumberGenerator()
                        for step in 0..<10 {
                            let source = plan[Int.random(in: 0..<plan.count, using: &generator)]
                            let amount = Int.random(in: 1...400, using: &generator)
                            if (client + step) % 3 == 0 {
                                let reply = try await app.request(.post, "/api/wallets/\(source.wallet)/debit", token: source.token,
                                                                  body: #"{"amount":\#(amount)}"#)
                                tally.add(reply.status)
                                if reply.status == .ok { debited.withLock { $0 += Int64(amount) } }
                            } else {
                                var target = plan[Int.random(in: 0..<plan.count, using: &generator)]
                                while target.wallet == source.wallet { target = plan[Int.random(in: 0..<plan.count, using: &generator)] }
                                let reply = try await app.request(.post, "/api/transfers", token: source.token, body: """
                                    {"fromWalletId":"\(source.wallet)","toWalletId":"\(target.wallet)","amount":\(amount)}
                                    """)
                                tally.add(reply.status)
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.all.values.reduce(0, +) == 1000)
            #expect(Set(tally.all.keys).isSubset(of: [200, 201, 409]), "\(tally.all)")
            var total: Int64 = 0
            for entry in wallets {
                let balance = try await app.balance(entry.wallet)
                #expect(balance >= 0)
                #expect(balance == (try await app.ledgerSum(entry.wallet)))
                total += balance
            }
            #expect(total == 8 * 5_000 - debited.withLock { $0 })
        }
    }

    @Test(arguments: TestStores.kinds)
    func opposingTransfersNeverDeadlock(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let alice = try await app.createUser(name: "alice")
            let bob = try await app.createUser(name: "bob")
            let a = try await app.openWallet(token: alice)
            let b = try await app.openWallet(token: bob)
            try await app.credit(a, 2_000)
            try await app.credit(b, 2_000)
            let tally = StatusTally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<400 {
                    group.addTask {
                        let (from, to, token) = index % 2 == 0 ? (a, b, alice) : (b, a, bob)
                        tally.add(try await app.request(.post, "/api/transfers", token: token, body: """
                            {"fromWalletId":"\(from)","toWalletId":"\(to)","amount":10}
                            """).status)
                    }
                }
                try await group.waitForAll()
            }
            #expect(tally.all == [201: 400])
            #expect(try await app.balance(a) == 2_000)
            #expect(try await app.balance(b) == 2_000)
            #expect(try await app.ledgerCount(a) == 401)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aFailureBetweenBalanceAndLedgerLeavesTheBalanceUntouched(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let wallet = try await app.openWallet(token: owner)
            try await app.credit(wallet, 500)
            try app.services.failpoints.arm(WalletService.Failpoint.debitAfterBalanceUpdate, .once)
            let failed = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, body: #"{"amount":200}"#)
            #expect(failed.status == .internalServerError)
            #expect(try await app.balance(wallet) == 500)
            #expect(try await app.ledgerCount(wallet) == 1)

            try app.services.failpoints.arm(WalletService.Failpoint.transferBetweenWallets, .once)
            let other = try await app.openWallet(token: owner)
            let transfer = try await app.request(.post, "/api/transfers", token: owner, body: """
                {"fromWalletId":"\(wallet)","toWalletId":"\(other)","amount":100}
                """)
            #expect(transfer.status == .internalServerError)
            #expect(try await app.balance(wallet) == 500)
            #expect(try await app.balance(other) == 0)

            // Disarmed (once): the same debit now works.
            #expect(try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, body: #"{"amount":200}"#).status == .ok)
            #expect(try await app.balance(wallet) == 300)
        }
    }
}

@Suite("Wallet API", .timeLimit(.minutes(10)))
struct WalletAPITests {
    @Test(arguments: TestStores.kinds)
    func badAmountsAre422AndChangeNothing(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let wallet = try await app.openWallet(token: owner)
            try await app.credit(wallet, 1_000)
            let target = try await app.openWallet(token: owner)
            let amounts = ["0", "-5", "10.5", "0.5", #""10""#, "null", "10000000000000", "1e13", "true", "[1]", "{}"]
            for amount in amounts {
                for (path, token) in [("/api/wallets/\(wallet)/debit", owner), ("/api/wallets/\(wallet)/credit", TestApp.adminToken)] {
                    let reply = try await app.request(.post, path, token: token, body: #"{"amount":\#(amount)}"#)
                    #expect(reply.status == .unprocessableContent, "\(path) \(amount)")
                    #expect(reply.errorDetails?["field"] as? String == "amount", "\(path) \(amount)")
                }
                let transfer = try await app.request(.post, "/api/transfers", token: owner, body: """
                    {"fromWalletId":"\(wallet)","toWalletId":"\(target)","amount":\(amount)}
                    """)
                #expect(transfer.status == .unprocessableContent, "transfer \(amount)")
            }
            let missing = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, body: #"{"reference":"x"}"#)
            #expect(missing.status == .unprocessableContent)
            #expect(try await app.balance(wallet) == 1_000)
            #expect(try await app.ledgerCount(wallet) == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func walletsArePrivateAndCreditsAreForAdmins(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser(name: "owner")
            let stranger = try await app.createUser(name: "stranger")
            let wallet = try await app.openWallet(token: owner)
            try await app.credit(wallet, 100)
            #expect(try await app.request(.get, "/api/wallets/\(wallet)", token: stranger).status == .notFound)
            #expect(try await app.request(.get, "/api/wallets/\(wallet)/transactions", token: stranger).status == .notFound)
            #expect(try await app.request(.post, "/api/wallets/\(wallet)/debit", token: stranger, body: #"{"amount":1}"#).status == .notFound)
            #expect(try await app.request(.post, "/api/wallets/\(wallet)/credit", token: owner, body: #"{"amount":1}"#).status == .forbidden)
            let strangerWallet = try await app.openWallet(token: stranger)
            #expect(try await app.request(.post, "/api/transfers", token: stranger, body: """
                {"fromWalletId":"\(wallet)","toWalletId":"\(strangerWallet)","amount":1}
                """).status == .notFound)
            #expect(try await app.request(.get, "/api/wallets/not-a-uuid", token: owner).status == .notFound)
            #expect(try await app.request(.get, "/api/wallets/\(UUID().uuidString)", token: owner).status == .notFound)
            let admin = try await app.request(.get, "/api/wallets/\(wallet)", token: TestApp.adminToken)
            #expect(admin.json["balance"] as? Int == 100)
            #expect(try await app.balance(wallet) == 100)
        }
    }

    @Test(arguments: TestStores.kinds)
    func transfersRefuseSelfCurrencyMismatchAndOverdraft(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let usd = try await app.openWallet(token: owner)
            let eur = try await app.openWallet(token: owner, currency: "EUR")
            let usd2 = try await app.openWallet(token: owner)
            try await app.credit(usd, 100)
            func transfer(_ from: String, _ to: String, _ amount: Int) async throws -> TestReply {
                try await app.request(.post, "/api/transfers", token: owner, body: #"{"fromWalletId":"\#(from)","toWalletId":"\#(to)","amount":\#(amount)}"#)
            }
            #expect(try await transfer(usd, usd, 10).status == .unprocessableContent)
            #expect(try await transfer(usd, eur, 10).status == .unprocessableContent)
            let short = try await transfer(usd, usd2, 101)
            #expect(short.status == .conflict)
            #expect(short.errorCode == "insufficient_funds")
            let bad = try await app.request(.post, "/api/transfers", token: owner, body: #"{"fromWalletId":"nope","toWalletId":"\#(usd2)","amount":1}"#)
            #expect(bad.errorDetails?["field"] as? String == "fromWalletId")
            #expect(try await app.request(.post, "/api/wallets", token: owner, body: #"{"currency":"usd"}"#).status == .unprocessableContent)
            let done = try await transfer(usd, usd2, 100)
            #expect(done.status == .created)
            #expect((done.json["from"] as? [String: Any])?["balance"] as? Int == 0)
            #expect((done.json["to"] as? [String: Any])?["balance"] as? Int == 100)
        }
    }

    @Test(arguments: TestStores.kinds)
    func creditsCannotPassTheMaximumBalance(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let wallet = try await app.openWallet(token: try await app.createUser())
            // Set up a balance near the ceiling directly (it would take 1,000 maximal credits).
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE wallets SET balance = \(bind: Wallet.maximumBalance - 5) WHERE id = \(bind: wallet)").run()
            }
            try await app.credit(wallet, 5)
            let over = try await app.request(.post, "/api/wallets/\(wallet)/credit", token: TestApp.adminToken, body: #"{"amount":1}"#)
            #expect(over.status == .unprocessableContent)
            #expect(try await app.balance(wallet) == Wallet.maximumBalance)
        }
    }

    @Test(arguments: TestStores.kinds)
    func theLedgerListsNewestFirstInPages(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let wallet = try await app.openWallet(token: owner)
            for amount in 1...5 { try await app.credit(wallet, amount) }
            _ = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, body: #"{"amount":3,"reference":"coffee"}"#)
            let first = try await app.request(.get, "/api/wallets/\(wallet)/transactions?limit=4", token: owner)
            let items = try #require(first.json["items"] as? [[String: Any]])
            #expect(items.map { $0["amount"] as? Int } == [3, 5, 4, 3])
            #expect(items.first?["kind"] as? String == "debit")
            #expect(items.first?["reference"] as? String == "coffee")
            #expect(items.first?["balanceAfter"] as? Int == 12)
            let cursor = try #require(first.json["nextCursor"] as? String)
            let second = try await app.request(.get, "/api/wallets/\(wallet)/transactions?limit=4&cursor=\(cursor)", token: owner)
            #expect((second.json["items"] as? [[String: Any]])?.map { $0["amount"] as? Int } == [2, 1])
            #expect(second.json["nextCursor"] is NSNull)
        }
    }
}

@Suite("Idempotency keys", .timeLimit(.minutes(10)))
struct IdempotencyKeyTests {
    @Test(arguments: TestStores.kinds)
    func keysExpireAfterADayAndArePruned(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let wallet = try await app.openWallet(token: owner)
            try await app.credit(wallet, 100)
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "old-key"]
            #expect(try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, headers: key, body: #"{"amount":10}"#).status == .ok)
            // Age the key past 24 hours.
            let dayAndAMinute: Int64 = (24 * 3600 + 60) * 1_000_000
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE idempotency_keys SET created_at_micros = created_at_micros - \(bind: dayAndAMinute)").run()
            }
            // An expired key is a new key: the request takes effect again, and is not a replay.
            let again = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner, headers: key, body: #"{"amount":10}"#)
            #expect(again.status == .ok)
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            #expect(try await app.balance(wallet) == 80)
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE idempotency_keys SET created_at_micros = created_at_micros - \(bind: dayAndAMinute)").run()
            }
            #expect(try await app.services.idempotency.prune() == 1)
            #expect(try await app.services.idempotency.prune() == 0)
        }
    }

    @Test func badKeysAre422() async throws {
        try await TestApp.run(.sqlite) { app in
            let owner = try await app.createUser()
            let wallet = try await app.openWallet(token: owner)
            for bad in [String(repeating: "k", count: 256), "has space", "tab\tkey"] {
                let reply = try await app.request(.post, "/api/wallets/\(wallet)/debit", token: owner,
                                                  headers: [HTTPField.Name("Idempotency-Key")!: bad], body: #"{"amount":1}"#)
                #expect(reply.status == .unprocessableContent)
                #expect(reply.errorDetails?["field"] as? String == "Idempotency-Key")
            }
        }
    }
}

@Suite("Idempotency claims", .timeLimit(.minutes(10)))
struct IdempotencyClaimTests {
    /// A request stuck past the abandon time loses its claim to a retry; when it finally tries to complete, its
    /// effect is rolled back, so the key still takes effect once.
    @Test(arguments: TestStores.kinds)
    func aTakenOverClaimCannotCompleteItsEffect(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let owner = try await app.createUser()
            let user = try #require(try await app.services.users.authenticate(token: owner))
            let wallet = try await app.openWallet(token: owner)
            try await app.credit(wallet, 1_000)
            let walletID = try #require(WalletID(wallet))
            let store = app.services.idempotency
            guard case .proceed(let stuck) = try await store.claim(user: user.id, key: "slow", requestHash: "h") else {
                Issue.record("first claim did not proceed")
                return
            }
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE idempotency_keys SET updated_at_micros = updated_at_micros - 61000000").run()
            }
            guard case .proceed(let retry) = try await store.claim(user: user.id, key: "slow", requestHash: "h") else {
                Issue.record("the retry did not take the abandoned claim over")
                return
            }
            #expect(stuck != retry)
            // The stuck request finishes its effect now: the completion refuses, so the debit rolls back.
            await #expect(throws: AppError.self) {
                try await app.services.primary.transaction { sql in
                    _ = try await app.services.wallets.debit(walletID, Amount(100)!, nil, user, sql)
                    try await store.complete(user: user.id, key: "slow", token: stuck, status: 200, body: "{}", in: sql)
                }
            }
            try await store.release(user: user.id, key: "slow", token: stuck)
            #expect(try await app.balance(wallet) == 1_000)
            // The retry owns the key and completes normally.
            try await app.services.primary.transaction { sql in
                _ = try await app.services.wallets.debit(walletID, Amount(100)!, nil, user, sql)
                try await store.complete(user: user.id, key: "slow", token: retry, status: 200, body: "{}", in: sql)
            }
            #expect(try await app.balance(wallet) == 900)
            #expect(try await app.ledgerCount(wallet) == 2)
        }
    }
}
