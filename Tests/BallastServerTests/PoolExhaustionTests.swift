import BallastTestSupport
import Foundation
import HTTPTypes
import Storage
import Testing

/// SPEC §10: with every connection held by slow transactions, requests answer 503 with Retry-After within the
/// pool's wait instead of queueing behind them; nothing hangs; once the slow work ends, everything succeeds again
/// and no money moved twice or without its ledger row.
@Suite("Connection pool exhaustion")
struct PoolExhaustionTests {
    static let poolSize = 2
    static let poolWait: Duration = .milliseconds(500)
    /// How long the slow transactions hold their connections: far longer than the pool's wait.
    static let holdFor: Duration = .seconds(10)

    @Test(arguments: TestStores.kinds)
    func aSaturatedPoolAnswers503WithinItsWaitThenRecovers(kind: StoreKind) async throws {
        try await TestStores.withFreshURL(kind) { url in
            try await Database.withRunning(url, poolSize: Self.poolSize, poolWait: Self.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                try await Migrator(database: database, logger: TestStores.logger).migrate()
                try await TestApp.start(database, shadow: nil, environment: [:], workers: false, subscribers: [], live: false,
                                        configure: { _ in }) { app in
                    let token = try await app.createUser()
                    let wallet = try await app.openWallet(token: token)
                    try await app.credit(wallet, 1_000)

                    // Slow transactions take every connection (on SQLite, the one writer; the other waits at the
                    // write gate and gives up after the pool's wait).
                    let holding = Locked(0)
                    let released = Locked(false)
                    let holders = Task {
                        await withTaskGroup(of: Void.self) { group in
                            for _ in 0..<Self.poolSize {
                                group.addTask {
                                    _ = try? await database.transaction { sql in
                                        try await sql.raw("SELECT 1 AS one").run()
                                        holding.withLock { $0 += 1 }
                                        try await Task.sleep(for: Self.holdFor)
                                    }
                                }
                            }
                        }
                        released.withLock { $0 = true }
                    }
                    while holding.withLock({ $0 }) < (kind == .sqlite ? 1 : Self.poolSize) {
                        try await Task.sleep(for: .milliseconds(10))
                    }

                    // 200 debits at once, every one answered while the slow transactions still hold the pool.
                    let replies = try await withThrowingTaskGroup(of: (TestReply, Bool).self) { group in
                        for number in 0..<200 {
                            group.addTask {
                                let reply = try await app.request(
                                    .post, "/api/wallets/\(wallet)/debit", token: token,
                                    headers: [HTTPField.Name("Idempotency-Key")!: "saturated-\(number)"], body: #"{"amount":1}"#)
                                return (reply, released.withLock { $0 })
                            }
                        }
                        return try await group.reduce(into: []) { $0.append($1) }
                    }
                    #expect(replies.count == 200)
                    for (reply, afterRelease) in replies {
                        #expect(!afterRelease, "answered only after the slow transactions ended: the caller waited past the pool's wait")
                        #expect(reply.status == .serviceUnavailable, "\(reply.body)")
                        #expect(reply.errorCode == "service_unavailable")
                        #expect(reply.headers[.retryAfter] == "1")
                    }
                    #expect(try await app.metric(#"db_pool_timeouts_total{store="primary"}"#) >= 200, "every refusal is counted")
                    await holders.value
                    #expect(try await app.balance(wallet) == 1_000, "a refused debit took money")
                    #expect(try await app.ledgerCount(wallet) == 1)

                    // Recovery: the same 200 debits, eight at a time, each retried with its key until it is answered;
                    // every one is applied exactly once.
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for number in 0..<200 {
                            if number >= 8 { try await group.next() }
                            group.addTask {
                                // A claim whose effect timed out in the rush is released in the background: a retry
                                // may be told 409 idempotency_key_in_use for a few seconds meanwhile.
                                for _ in 0..<400 {
                                    let reply = try await app.request(
                                        .post, "/api/wallets/\(wallet)/debit", token: token,
                                        headers: [HTTPField.Name("Idempotency-Key")!: "saturated-\(number)"], body: #"{"amount":1}"#)
                                    if reply.status == .ok { return }
                                    #expect(reply.status == .serviceUnavailable || reply.status == .conflict, "\(reply.status) \(reply.body)")
                                    try await Task.sleep(for: .milliseconds(50))
                                }
                                Issue.record("debit \(number) never succeeded after the load passed")
                            }
                        }
                        try await group.waitForAll()
                    }
                    #expect(try await app.balance(wallet) == 800)
                    #expect(try await app.ledgerCount(wallet) == 201)
                    #expect(try await app.ledgerSum(wallet) == 800)
                }
            }
        }
    }
}
