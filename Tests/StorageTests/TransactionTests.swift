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

    /// A fresh store of `kind` with one connection and the given pool wait, running (its connection open) while
    /// `body` uses it.
    static func withOneConnection(_ kind: StoreKind, poolWait: Duration, _ body: @Sendable (Database) async throws -> Void) async throws {
        try await TestStores.withFreshURL(kind) { url in
            let database = try await Database.open(url, poolSize: 1, poolWait: poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await database.run() }
                defer { group.cancelAll() }
                for _ in 0..<100 where (try? await database.ping()) == nil { try await Task.sleep(for: .milliseconds(100)) }
                try await body(database)
            }
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

    /// 300 concurrent transactions of three kinds: one third write and commit, one third write then throw, one third
    /// write then break a constraint. Each caller gets its own outcome and only the committed writes remain; on SQLite
    /// they shared commits (``WriteBatcher``), so one body's failure inside a shared transaction undid only its own
    /// writes.
    @Test(arguments: TestStores.kinds)
    func concurrentTransactionsKeepTheirOwnOutcomes(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind, poolSize: 10) { database in
            try await database.transaction { sql in
                try await sql.raw("CREATE TABLE items (id INTEGER PRIMARY KEY, n BIGINT NOT NULL CHECK (n >= 0))").run()
            }
            let outcomes = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for i in 0..<300 {
                    group.addTask {
                        do {
                            let value = try await database.transaction { sql in
                                try await sql.raw("INSERT INTO items (id, n) VALUES (\(bind: i), \(bind: i))").run()
                                switch i % 3 {
                                case 0: return i
                                case 1: throw Boom()
                                default:
                                    try await sql.raw("INSERT INTO items (id, n) VALUES (\(bind: 1000 + i), -1)").run()
                                    return -1
                                }
                            }
                            return (i, "value \(value)")
                        } catch is Boom {
                            return (i, "boom")
                        } catch StorageError.checkViolation {
                            return (i, "check")
                        }
                    }
                }
                return try await group.reduce(into: [Int: String]()) { $0[$1.0] = $1.1 }
            }
            for i in 0..<300 {
                #expect(outcomes[i] == [0: "value \(i)", 1: "boom", 2: "check"][i % 3], "transaction \(i)")
            }
            let ids = try await database.read { sql in
                try await sql.raw("SELECT id FROM items ORDER BY id").all().map { try $0.decode(column: "id", as: Int.self) }
            }
            #expect(ids == Array(stride(from: 0, to: 300, by: 3)))
            if kind == .sqlite {
                let shared = try #require(database.sharedCommits)
                #expect(shared.transactions >= 301)
                #expect(shared.batches < shared.transactions, "concurrent writers shared commits: \(shared)")
            }
        }
    }

    /// A constraint checked only at commit (a deferred foreign key) fails the transaction that broke it and no other,
    /// even when the broken one shared a commit with others (SQLite runs those again alone).
    @Test(arguments: TestStores.kinds)
    func aFailureAtCommitIsOnlyTheBreakersOwn(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind, poolSize: 10) { database in
            try await database.transaction { sql in
                try await sql.raw("CREATE TABLE parents (id INTEGER PRIMARY KEY)").run()
                try await sql.raw("""
                    CREATE TABLE children (id INTEGER PRIMARY KEY,
                        parent_id INTEGER NOT NULL REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)
                    """).run()
                try await sql.raw("INSERT INTO parents (id) VALUES (1)").run()
            }
            let committed = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
                for i in 0..<200 {
                    group.addTask {
                        do {
                            try await database.transaction { sql in
                                // Every tenth child names a parent that does not exist: refused at its commit.
                                try await sql.raw("INSERT INTO children (id, parent_id) VALUES (\(bind: i), \(bind: i % 10 == 0 ? 2 : 1))").run()
                            }
                            return (i, true)
                        } catch {
                            return (i, false)
                        }
                    }
                }
                return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            for i in 0..<200 { #expect(committed[i] == (i % 10 != 0), "child \(i)") }
            let count = try await database.read { sql in
                try await sql.raw("SELECT COUNT(*) AS n FROM children").first()!.decode(column: "n", as: Int.self)
            }
            #expect(count == 180)
        }
    }

    /// Two processes on one store: one writes without pause (16 writers, its transactions following each other within
    /// microseconds), the other writes now and then. Each of the lone writer's transactions gets its turn while the busy
    /// process commits a handful of its own, not hundreds: on SQLite it looks at the file's write lock often enough to
    /// find it free between the busy process's batches. (Counted in the busy process's commits, not in time, so a slow
    /// machine slows both sides alike.)
    @Test(arguments: TestStores.kinds)
    func aWriterInAnotherProcessIsNotStarved(kind: StoreKind) async throws {
        try await TestStores.withFreshURL(kind) { url in
            try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                try await Self.makeCounterTable(database)
            }
            final class Progress: Sendable {
                let busyCommits = Atomic<Int>(0)
                let loneDone = Atomic<Bool>(false)
            }
            let progress = Progress()
            let lone = 40
            let overtaken = try await withThrowingTaskGroup(of: [Int].self) { group in
                group.addTask {
                    try await Database.withRunning(url, poolSize: 4, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                        try await withThrowingTaskGroup(of: Void.self) { writers in
                            for _ in 0..<16 {
                                writers.addTask {
                                    while !progress.loneDone.load(ordering: .acquiring) {
                                        try await database.transaction { sql in
                                            try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
                                        }
                                        progress.busyCommits.add(1, ordering: .releasing)
                                    }
                                }
                            }
                            try await writers.waitForAll()
                        }
                        return []
                    }
                }
                group.addTask {
                    defer { progress.loneDone.store(true, ordering: .releasing) }
                    return try await Database.withRunning(url, poolSize: 4, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                        while progress.busyCommits.load(ordering: .acquiring) < 200 { try await Task.sleep(for: .milliseconds(5)) }
                        var overtaken: [Int] = []
                        for _ in 0..<lone {
                            let before = progress.busyCommits.load(ordering: .acquiring)
                            try await database.transaction { sql in
                                try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 2").run()
                            }
                            overtaken.append(progress.busyCommits.load(ordering: .acquiring) - before)
                            try await Task.sleep(for: .milliseconds(5))
                        }
                        return overtaken
                    }
                }
                var overtaken: [Int] = []
                for try await figures in group { overtaken += figures }
                return overtaken.sorted()
            }
            let (busy, loneWrites) = try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                (try await Self.value(database, id: 1), try await Self.value(database, id: 2))
            }
            #expect(loneWrites == lone, "every lone write got through")
            #expect(busy == progress.busyCommits.load(ordering: .acquiring))
            try #require(overtaken.count == lone)
            #expect(overtaken.last! <= 1000, "the lone writer waited while the busy process committed \(overtaken.last!)")
        }
    }

    /// A writer cancelled while its transaction waits for another process's write lock stops waiting: it is answered
    /// `CancellationError` while the other still holds the lock, and its body never runs, not even once the lock is
    /// free. A batch keeps waiting for the writers in it that were not cancelled: once the lock comes, their bodies run
    /// and commit, and the cancelled one's does not. (SQLite: only a file has other processes.)
    @Test func aCancelledWriterStopsWaitingForAnotherProcessesLock() async throws {
        final class State: Sendable {
            let holding = Atomic<Bool>(false)
            let released = Atomic<Bool>(false)
            let ran = Mutex<Set<Int>>([])
        }
        let state = State()
        try await TestStores.withFreshURL(.sqlite) { url in
            try await Database.withRunning(url, poolSize: 2, connectWait: TestStores.connectWait, logger: TestStores.logger) { other in
                try await Self.makeCounterTable(other)
                try await Database.withRunning(url, poolSize: 2, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                    // The other process holds the write lock for 4.5 s, or until this test lets it go: less than the
                    // writer's 5 s of tries, so a writer that ignored its cancellation would get the lock and run.
                    let holder = Task {
                        try await other.transaction { sql in
                            try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
                            state.holding.store(true, ordering: .releasing)
                            let until = ContinuousClock.now + .seconds(4.5)
                            while !state.released.load(ordering: .acquiring), ContinuousClock.now < until {
                                try await Task.sleep(for: .milliseconds(10))
                            }
                            state.released.store(true, ordering: .releasing)
                        }
                    }
                    while !state.holding.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
                    // Writer n adds 10^n to row 2, so the row tells whose bodies committed.
                    func writer(_ n: Int) -> Task<Void, any Error> {
                        Task {
                            try await database.transaction { sql in
                                state.ran.withLock { _ = $0.insert(n) }
                                try await sql.raw("UPDATE counters SET value = value + \(bind: Int64(pow(10, Double(n)))) WHERE id = 2").run()
                            }
                        }
                    }
                    // Writer 0 leads a batch of its own, waiting for the lock; 1 and 2 queue behind it.
                    let lone = writer(0)
                    try await Task.sleep(for: .milliseconds(300))
                    let bothCancelled = [writer(1), writer(2)]
                    try await Task.sleep(for: .milliseconds(100))
                    lone.cancel()
                    let loneOutcome = await lone.result
                    let loneAnsweredWhileHeld = !state.released.load(ordering: .acquiring)
                    // Writers 1 and 2 now wait for the lock in one batch; 3 and 4 queue behind it. Both of the batch
                    // are cancelled: it stops waiting.
                    try await Task.sleep(for: .milliseconds(200))
                    let (cancelledInBatch, kept) = (writer(3), writer(4))
                    try await Task.sleep(for: .milliseconds(100))
                    for task in bothCancelled { task.cancel() }
                    var batchOutcomes: [Result<Void, any Error>] = []
                    for task in bothCancelled { batchOutcomes.append(await task.result) }
                    let batchAnsweredWhileHeld = !state.released.load(ordering: .acquiring)
                    // Writers 3 and 4 now wait in one batch; 3 is cancelled, 4 still wants the lock.
                    try await Task.sleep(for: .milliseconds(200))
                    cancelledInBatch.cancel()
                    try await Task.sleep(for: .milliseconds(100))
                    let stillHeld = !state.released.load(ordering: .acquiring)
                    state.released.store(true, ordering: .releasing)
                    try await holder.value
                    let cancelledOutcome = await cancelledInBatch.result
                    let keptOutcome = await kept.result
                    #expect(throws: CancellationError.self) { try loneOutcome.get() }
                    #expect(loneAnsweredWhileHeld, "the cancelled lone writer stopped waiting for the lock")
                    for outcome in batchOutcomes { #expect(throws: CancellationError.self) { try outcome.get() } }
                    #expect(batchAnsweredWhileHeld, "a batch whose writers were all cancelled stopped waiting for the lock")
                    #expect(stillHeld, "the lock was held until the test let it go")
                    #expect(throws: CancellationError.self) { try cancelledOutcome.get() }
                    #expect(throws: Never.self) { try keptOutcome.get() }
                    let ran = state.ran.withLock { $0 }
                    #expect(ran == [4], "only the writer still waiting ran its body")
                    let values = (try await Self.value(database, id: 1), try await Self.value(database, id: 2))
                    #expect(values == (1, 10_000))
                }
            }
        }
    }

    /// A writer kept from an SQLite file's write lock by another process gives up once it has waited as long as it
    /// would for a free connection (the pool's wait, here 2 s), however few tries that took: with the lock held for
    /// 7 s, its first try ends after the 5 s a try lasts, and it answers then, while the lock is still held, without
    /// running its body. (Counting tries instead, it would try again and get the lock at 7 s.)
    @Test func aWriterGivesUpOnAnotherProcessesLockAfterThePoolsWait() async throws {
        final class State: Sendable {
            let holding = Atomic<Bool>(false)
            let released = Atomic<Bool>(false)
            let ran = Atomic<Bool>(false)
        }
        let state = State()
        try await TestStores.withFreshURL(.sqlite) { url in
            try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { other in
                try await Self.makeCounterTable(other)
                try await Database.withRunning(
                    url, poolSize: 1, poolWait: .seconds(2), connectWait: TestStores.connectWait, logger: TestStores.logger
                ) { database in
                    let holder = Task {
                        try await other.transaction { sql in
                            try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
                            state.holding.store(true, ordering: .releasing)
                            try await Task.sleep(for: .seconds(7))
                            state.released.store(true, ordering: .releasing)
                        }
                    }
                    while !state.holding.load(ordering: .acquiring) { try await Task.sleep(for: .milliseconds(10)) }
                    let started = ContinuousClock.now
                    let outcome: Result<Void, any Error>
                    do {
                        outcome = .success(try await database.transaction { sql in
                            state.ran.store(true, ordering: .releasing)
                            try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 2").run()
                        })
                    } catch {
                        outcome = .failure(error)
                    }
                    let waited = ContinuousClock.now - started
                    let answeredWhileHeld = !state.released.load(ordering: .acquiring)
                    try await holder.value
                    #expect(throws: StorageError.self) { try outcome.get() }
                    #expect(answeredWhileHeld, "the writer gave up while the lock was still held (after \(waited))")
                    let ran = state.ran.load(ordering: .acquiring)
                    #expect(!ran, "the body never ran")
                    #expect(try await Self.value(database, id: 2) == 0)
                    #expect(try await Self.value(database, id: 1) == 1)
                }
            }
        }
    }

    /// On an SQLite file the connection serving write batches waits 5 ms per try for another process's write lock;
    /// every connection lent for anything else, and every connection of an in-memory store (no other process), waits
    /// the full 5 s, however the two kinds of work alternate on the pool's connections.
    @Test func onlyTheWriteLockIsWaitedForInShortTries() async throws {
        struct Timeout: Decodable { let timeout: Int }
        @Sendable func timeout(_ sql: any SQLDatabase) async throws -> Int {
            try await sql.raw("PRAGMA busy_timeout").first(decoding: Timeout.self)!.timeout
        }
        try await TestStores.withFreshURL(.sqlite) { url in
            for poolSize in [1, 3] {
                try await Database.withRunning(url, poolSize: poolSize, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                    for _ in 0..<3 {
                        #expect(try await database.transaction { try await timeout($0) } == 5)
                        let concurrent = try await withThrowingTaskGroup(of: Int.self) { group in
                            for _ in 0..<20 { group.addTask { try await database.transaction { try await timeout($0) } } }
                            return try await group.reduce(into: Set<Int>()) { $0.insert($1) }
                        }
                        #expect(concurrent == [5])
                        #expect(try await database.read { try await timeout($0) } == 5000)
                        #expect(try await database.snapshot { try await timeout($0) } == 5000)
                    }
                }
            }
        }
        let inMemory = try await Database.withRunning(.sqliteMemory, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
            [try await database.transaction { try await timeout($0) }, try await database.read { try await timeout($0) }]
        }
        #expect(inMemory == [5000, 5000])
    }

    /// A writer queued behind a transaction that does not end gives up after the pool's wait (or at once when its task
    /// is cancelled), and its body never runs; once the holder ends, writers are served again.
    @Test(arguments: TestStores.kinds)
    func aWriterQueuedBehindAHeldTransactionGivesUpInTime(kind: StoreKind) async throws {
        try await Self.withOneConnection(kind, poolWait: .milliseconds(200)) { database in
            try await Self.makeCounterTable(database)
            let holding = AsyncStream<Void>.makeStream()
            let release = AsyncStream<Void>.makeStream()
            let holder = Task {
                try await database.transaction { sql in
                    try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
                    holding.continuation.yield()
                    for await _ in release.stream { break }
                }
            }
            for await _ in holding.stream { break }
            let ran = Mutex(false)
            // A queued writer whose task is cancelled leaves at once; its body never runs.
            let cancelled = Task {
                try await database.transaction { sql in
                    ran.withLock { $0 = true }
                    try await sql.raw("UPDATE counters SET value = value + 1000 WHERE id = 1").run()
                }
            }
            try await Task.sleep(for: .milliseconds(50))
            cancelled.cancel()
            do {
                try await cancelled.value
                Issue.record("a cancelled writer's transaction ran")
            } catch {
                #expect(error is CancellationError, "left because it was cancelled, not after the pool's wait: \(error)")
            }
            await #expect(throws: StorageError.poolTimeout(waitedMilliseconds: 200)) {
                try await database.transaction { sql in
                    ran.withLock { $0 = true }
                    try await sql.raw("UPDATE counters SET value = value + 10 WHERE id = 1").run()
                }
            }
            #expect(!ran.withLock { $0 })
            release.continuation.yield()
            release.continuation.finish()
            try await holder.value
            try await database.transaction { sql in
                try await sql.raw("UPDATE counters SET value = value + 100 WHERE id = 1").run()
            }
            #expect(try await Self.value(database) == 101)
        }
    }

    /// A writer that leads its batch but is cancelled while the batch waits for a connection (every one is lent to a
    /// reader) never runs its body, and later writers are served once the connection is back.
    @Test func aCancelledLeaderWaitingForAConnectionNeverRunsItsBody() async throws {
        try await Self.withOneConnection(.sqlite, poolWait: .seconds(5)) { database in
            try await Self.makeCounterTable(database)
            let holding = AsyncStream<Void>.makeStream()
            let release = AsyncStream<Void>.makeStream()
            let reader = Task {
                try await database.read { _ in
                    holding.continuation.yield()
                    for await _ in release.stream { break }
                }
            }
            for await _ in holding.stream { break }
            let ran = Mutex(false)
            let writer = Task {
                try await database.transaction { sql in
                    ran.withLock { $0 = true }
                    try await sql.raw("UPDATE counters SET value = value + 1000 WHERE id = 1").run()
                }
            }
            try await Task.sleep(for: .milliseconds(100))
            writer.cancel()
            try await Task.sleep(for: .milliseconds(100))
            release.continuation.yield()
            release.continuation.finish()
            try await reader.value
            do {
                try await writer.value
                Issue.record("a writer cancelled before its body started ran it")
            } catch {
                #expect(error is CancellationError, "\(error)")
            }
            #expect(!ran.withLock { $0 })
            try await database.transaction { sql in
                try await sql.raw("UPDATE counters SET value = value + 1 WHERE id = 1").run()
            }
            #expect(try await Self.value(database) == 1)
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
