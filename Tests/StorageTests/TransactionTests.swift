import BallastConfig
import BallastTestSupport
import Foundation
import SQLKit
import Storage
import Synchronization
import Testing

struct Boom: Error {}

@Suite("Transactions and pools", .timeLimit(.minutes(10)))
struct TransactionTests {
    static func makeCounterTable(_ database: Database) async throws {
        try await database.transaction { sql in
            try await sql.raw("""
                CREATE TABLE counters (id INTEGER PRIMARY KEY, value BIGINT NOT NULL CHECK (value >= 0))
                """).run()
            try await sql.raw("INSERT INTO counters (id, value) VALUES (1, 0), (2, 0)").run()
        }
    }

    static func value(_ database: Database, id: Int = 1) async throws -> Int {
        try await database.read { sql in
            try await sql.raw("SELECT value FROM counters WHERE id = \(bind: id)").first()!.decode(column: "value", as: Int.self)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aThrowingBodyRollsEverythingBack(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            try await Self.makeCounterTable(database)
            await #expect(throws: Boom.self) {
                try await database.transaction { sql in
                    try await sql.raw("UPDATE counters SET value = value + 5 WHERE id = 1").run()
                    try await sql.raw("UPDATE counters SET value = value + 5 WHERE id = 2").run()
                    throw Boom()
                }
            }
            #expect(try await Self.value(database, id: 1) == 0)
            #expect(try await Self.value(database, id: 2) == 0)
            // The connection went back clean: the next transaction commits normally.
            try await database.transaction { sql in
                try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
            }
            #expect(try await Self.value(database) == 1)
        }
    }

    /// 300 concurrent transactions through a pool of 10: every increment lands exactly once.
    @Test(arguments: TestStores.kinds)
    func concurrentIncrementsAreExact(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind, poolSize: 10) { database in
            try await Self.makeCounterTable(database)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<300 {
                    group.addTask {
                        try await database.transaction { sql in
                            try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await Self.value(database) == 300)
        }
    }

    /// Conditional decrements race for 100 units: exactly 100 of 300 succeed and the value ends at 0, never below.
    @Test(arguments: TestStores.kinds)
    func conditionalUpdatesNeverOvershoot(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            try await Self.makeCounterTable(database)
            try await database.transaction { sql in try await sql.raw("UPDATE counters SET value = 100 WHERE id = 1").run() }
            let successes = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<300 {
                    group.addTask {
                        try await database.transaction { sql in
                            let row = try await sql.raw("""
                                UPDATE counters SET value = value - 1 WHERE id = 1 AND value >= 1 RETURNING value
                                """).first()
                            return row != nil
                        }
                    }
                }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(successes == 100)
            #expect(try await Self.value(database) == 0)
        }
    }

    @Test(arguments: TestStores.kinds)
    func constraintViolationsAreClassified(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            try await Self.makeCounterTable(database)
            await #expect {
                try await database.transaction { sql in
                    try await sql.raw("UPDATE counters SET value = -1 WHERE id = 1").run()
                }
            } throws: { error in
                if case StorageError.checkViolation = error { return true }
                return false
            }
            await #expect {
                try await database.transaction { sql in
                    try await sql.raw("INSERT INTO counters (id, value) VALUES (1, 0)").run()
                }
            } throws: { error in
                if case StorageError.uniqueViolation = error { return true }
                return false
            }
            #expect(try await Self.value(database) == 0)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aCallerWaitsBoundedTimeForAConnection(kind: StoreKind) async throws {
        try await TestStores.withFreshURL(kind) { url in
            let database = try await Database.open(url, poolSize: 1, poolWait: .milliseconds(200), connectWait: TestStores.connectWait, logger: TestStores.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await database.run() }
                defer { group.cancelAll() }
                // The one connection is opened first: on a loaded machine opening it can take longer than the 200 ms
                // wait under test, which is about waiting for a busy connection, not for a new one.
                for _ in 0..<100 where (try? await database.ping()) == nil { try await Task.sleep(for: .milliseconds(100)) }
                let holding = AsyncStream<Void>.makeStream()
                let release = AsyncStream<Void>.makeStream()
                group.addTask {
                    try await database.read { _ in
                        holding.continuation.yield()
                        for await _ in release.stream { break }
                    }
                }
                for await _ in holding.stream { break }
                await #expect(throws: StorageError.poolTimeout(waitedMilliseconds: 200)) {
                    try await database.ping()
                }
                release.continuation.yield()
                release.continuation.finish()
                // Once the holder lets go, the pool serves again.
                try await database.ping()
            }
        }
    }

    /// Two transactions that lock the same rows in opposite orders deadlock on PostgreSQL; the server aborts
    /// one with 40P01 and the helper runs it again, so both commit.
    @Test(.enabled(if: TestStores.kinds.contains(.postgres)))
    func deadlocksAreRetried() async throws {
        try await TestStores.withDatabase(.postgres) { database in
            try await Self.makeCounterTable(database)
            let attempts = AttemptCounter()
            let barrier = Barrier(parties: 2)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for (first, second) in [(1, 2), (2, 1)] {
                    group.addTask {
                        try await database.transaction { sql in
                            let attempt = attempts.next()
                            try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = \(bind: first)").run()
                            if attempt <= 2 { await barrier.arrive() }
                            try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = \(bind: second)").run()
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await Self.value(database, id: 1) == 2)
            #expect(try await Self.value(database, id: 2) == 2)
            #expect(attempts.count == 3, "one of the two ran again after the deadlock")
        }
    }

    /// A connection the server drops mid-transaction (a crash, a terminated backend) fails the transaction at once:
    /// the statement that finds it gone throws, and so does everything after it (the rollback included), so the
    /// caller is never left waiting on a connection that can no longer answer. The next transaction gets a fresh one.
    @Test(.enabled(if: TestStores.kinds.contains(.postgres)), .timeLimit(.minutes(3)))
    func aConnectionDroppedMidTransactionFailsInsteadOfHanging() async throws {
        try await TestStores.withDatabase(.postgres) { database in
            try await Self.makeCounterTable(database)
            for _ in 0..<5 {
                let started = ContinuousClock.now
                await #expect(throws: (any Error).self) {
                    try await database.transaction { sql in
                        try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
                        // Another session ends this one, as a crashing server would.
                        let pid = try await sql.raw("SELECT pg_backend_pid() AS pid").first()!.decode(column: "pid", as: Int32.self)
                        try await database.read { other in
                            try await other.raw("SELECT pg_terminate_backend(\(bind: pid))").run()
                        }
                        try await Task.sleep(for: .milliseconds(50))
                        try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 2").run()
                    }
                }
                let took = ContinuousClock.now - started
                #expect(took < .seconds(20), "the dropped connection answered within seconds, not never")
            }
            #expect(try await Self.value(database, id: 1) == 0)
            #expect(try await Self.value(database, id: 2) == 0)
        }
    }

    /// A process paused inside a transaction (here: a body that sleeps while holding a row lock) does not block the
    /// others for ever: the server ends the idle transaction's session after 10 s, its lock is free again, the
    /// waiting statement goes through, and the paused transaction commits nothing.
    @Test(.enabled(if: TestStores.kinds.contains(.postgres)), .timeLimit(.minutes(3)))
    func aTransactionPausedWhileHoldingALockDoesNotBlockOthers() async throws {
        try await TestStores.withDatabase(.postgres) { database in
            try await Self.makeCounterTable(database)
            let paused = Task {
                try await database.transaction { sql in
                    try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
                    try await Task.sleep(for: .seconds(20))
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            let started = ContinuousClock.now
            try await database.transaction { sql in try await sql.raw("UPDATE counters SET value = value + 10 WHERE id = 1").run() }
            let waited = ContinuousClock.now - started
            #expect(waited > .seconds(8) && waited < .seconds(25), "waited for the paused session to be ended, not \(waited)")
            await #expect(throws: (any Error).self) { try await paused.value }
            #expect(try await Self.value(database, id: 1) == 10)
        }
    }

    /// A server that is down must not make callers wait for ever: they get `unavailable` (503 upstream).
    @Test(.timeLimit(.minutes(1)))
    func queriesAgainstADownServerFailInsteadOfWaiting() async throws {
        let url = try #require(DatabaseURL.parse("postgres://ballast@127.0.0.1:1/nowhere"))
        try await Database.withRunning(url, poolSize: 2, logger: TestStores.logger) { database in
            for _ in 0..<2 {
                await #expect {
                    try await database.read { sql in try await sql.raw("SELECT 1").run() }
                } throws: { error in
                    if case StorageError.unavailable = error { return true }
                    return false
                }
            }
            await #expect(throws: StorageError.self) {
                try await database.transaction { sql in try await sql.raw("SELECT 1").run() }
            }
        }
    }

    @Test func anUnreachableServerIsReportedWithoutItsPassword() async throws {
        let url = try #require(DatabaseURL.parse("postgres://ballast:hunter2@127.0.0.1:1/nowhere"))
        try await Database.withRunning(url, poolSize: 1, logger: TestStores.logger) { database in
            do {
                try await database.waitUntilReachable(timeout: .seconds(1), attemptTimeout: .milliseconds(500))
                Issue.record("an unreachable server answered")
            } catch let error as StorageError {
                guard case .unavailable(let message) = error else {
                    Issue.record("unexpected \(error)")
                    return
                }
                #expect(message.contains("postgres://ballast:***@127.0.0.1:1/nowhere"))
                #expect(!message.contains("hunter2"))
            }
        }
    }
}

/// Counts transaction attempts across tasks.
final class AttemptCounter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
    var count: Int { value.withLock { $0 } }
}

/// Lets `parties` tasks wait for each other once.
actor Barrier {
    private let parties: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(parties: Int) { self.parties = parties }

    func arrive() async {
        if waiting.count + 1 == parties {
            waiting.forEach { $0.resume() }
            waiting.removeAll()
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}
