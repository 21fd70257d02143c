import BallastTestSupport
import Evidence
import EvidenceStore
import Foundation
import Commerce
import Operations
import Metrics
import Logging
import SQLKit
import Storage
import Testing

func event(_ index: Int, type: String = "SHADOW_WRITE_FAILURE", entity: String? = nil) -> EvidenceEvent {
    EvidenceEvent(
        controlId: EvidenceControl.systemMonitoring.rawValue, category: EvidenceCategory.processingIntegrity.rawValue, eventType: type,
        eventOutcome: "FAILURE", entityType: "listing", entityId: entity ?? "listing-\(index)", requestId: "req-\(index)",
        details: ["index": .integer(Int64(index)), "failureType": "injected"])
}

/// Drops the append-only triggers so a test can play the attacker who edits the table directly.
func dropTriggers(_ database: Database) async throws {
    try await database.read { sql in
        if database.dialect == .sqlite {
            try await sql.raw("DROP TRIGGER evidence_records_no_update").run()
            try await sql.raw("DROP TRIGGER evidence_records_no_delete").run()
        } else {
            try await sql.raw("DROP TRIGGER evidence_records_no_update_delete ON evidence_records").run()
            try await sql.raw("DROP TRIGGER evidence_records_no_truncate ON evidence_records").run()
        }
    }
}

@Suite("Evidence log", .timeLimit(.minutes(10)))
struct EvidenceLogTests {
    /// 32 appenders × 200 records, racing in 640 transactions of one or nineteen records: one unforked chain.
    @Test(arguments: TestStores.kinds)
    func concurrentAppendersBuildOneContiguousValidChain(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let log = EvidenceLog(database: database)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for appender in 0..<32 {
                    group.addTask {
                        // 20 transactions per appender: sizes 1, 19, 1, 19, … (200 records).
                        var index = 0
                        for round in 0..<20 {
                            let size = round % 2 == 0 ? 1 : 19
                            try await log.append((index..<index + size).map { event(appender * 1000 + $0) })
                            index += size
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seqs = try await database.read { sql in
                try await sql.raw("SELECT seq FROM evidence_records ORDER BY seq").all().map { try $0.decode(column: "seq", as: Int64.self) }
            }
            #expect(seqs == Array(1...6400))
            let result = try await log.verify()
            #expect(result.valid)
            #expect(result.records == 6400)
            #expect(result.headSeq == 6400)
            #expect(try await log.head() == EvidenceDigest(seq: 6400, hash: result.headHash))
        }
    }

    /// Four pools on one store, as four server processes would have, appending at once: still one chain.
    @Test(arguments: TestStores.kinds)
    func separateProcessesShareOneChain(kind: StoreKind) async throws {
        try await TestStores.withFreshURL(kind) { url in
            try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                try await Migrator(database: database, logger: TestStores.logger).migrate()
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for process in 0..<4 {
                    group.addTask {
                        try await Database.withRunning(
                            url, poolSize: 4, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait,
                            logger: TestStores.logger
                        ) { database in
                            let log = EvidenceLog(database: database)
                            try await withThrowingTaskGroup(of: Void.self) { appenders in
                                for appender in 0..<8 {
                                    appenders.addTask {
                                        for index in 0..<25 { try await log.append(event(process * 10_000 + appender * 100 + index)) }
                                    }
                                }
                                try await appenders.waitForAll()
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            try await Database.withRunning(url, poolSize: 1, connectWait: TestStores.connectWait, logger: TestStores.logger) { database in
                let result = try await EvidenceLog(database: database).verify()
                #expect(result.valid)
                #expect(result.records == 800)
                #expect(result.headSeq == 800)
            }
        }
    }

    @Test(arguments: TestStores.kinds)
    func theDatabaseRefusesUpdateDeleteAndTruncate(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let log = EvidenceLog(database: database)
            try await log.append([event(1), event(2)])
            var statements: [SQLQueryString] = [
                "UPDATE evidence_records SET details = '{}' WHERE seq = 1",
                "DELETE FROM evidence_records WHERE seq = 2",
                "DELETE FROM evidence_records",
            ]
            if kind == .postgres { statements.append("TRUNCATE evidence_records") }
            for statement in statements {
                await #expect(throws: (any Error).self, "\(statement)") {
                    try await database.transaction { sql in try await sql.raw(statement).run() }
                }
            }
            #expect(try await log.verify().records == 2)
            #expect(try await log.verify().valid)
        }
    }

    @Test(arguments: TestStores.kinds)
    func verifyNamesTheFirstTamperedRecord(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let log = EvidenceLog(database: database)
            let records = try await log.append((1...50).map { event($0) })
            try await dropTriggers(database)
            try await database.transaction { sql in
                try await sql.raw("UPDATE evidence_records SET details = \(bind: #"{"index":999}"#) WHERE seq = 17").run()
            }
            let result = try await log.verify()
            #expect(!result.valid)
            #expect(result.firstInvalidSeq == 17)
            #expect(result.firstInvalidId == records[16].id.uuidString.lowercased())
            #expect(result.failure == "content_hash_mismatch")

            // A deleted record shows as a gap at the one after it.
            try await database.transaction { sql in
                try await sql.raw("DELETE FROM evidence_records WHERE seq = 5").run()
            }
            let gap = try await log.verify()
            #expect(gap.firstInvalidSeq == 6)
            #expect(gap.failure == "sequence_gap")
        }
    }

    /// An attacker who rewrites a record and recomputes every later hash produces a self-consistent chain;
    /// only a digest kept outside the database exposes it.
    @Test(arguments: TestStores.kinds)
    func aDigestCatchesAWholeRewrittenChain(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let log = EvidenceLog(database: database)
            try await log.append((1...20).map { event($0) })
            let digest = try #require(try await log.head())
            try await log.append((21...30).map { event($0) })
            #expect(try await log.verify(digest: digest).valid)

            try await dropTriggers(database)
            let all = try await log.list(.init(), limit: 100).records
            var previousHash = EvidenceRecord.genesisHash
            try await database.transaction { sql in
                for var record in all {
                    if record.seq == 10 { record.details = #"{"failureType":"injected","index":-1}"# }
                    record.previousHash = previousHash
                    record.contentHash = EvidenceHasher.contentHash(of: record)
                    previousHash = record.contentHash
                    try await sql.raw("""
                        UPDATE evidence_records SET details = \(bind: record.details),
                            previous_hash = \(bind: record.previousHash), content_hash = \(bind: record.contentHash)
                        WHERE seq = \(bind: record.seq)
                        """).run()
                }
            }
            #expect(try await log.verify().valid, "the rewritten chain is consistent in itself")
            let pinned = try await log.verify(digest: digest)
            #expect(!pinned.valid)
            #expect(pinned.failure == "digest_mismatch")
            #expect(pinned.firstInvalidSeq == 20)
        }
    }

    @Test(arguments: TestStores.kinds)
    func listingFiltersAndPages(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let log = EvidenceLog(database: database)
            try await log.append((1...5).map { event($0, type: "A", entity: "e-1") } + (6...8).map { event($0, type: "B") })
            let firstPage = try await log.list(.init(eventType: "A"), limit: 2)
            #expect(firstPage.records.map(\.seq) == [1, 2])
            let secondPage = try await log.list(.init(eventType: "A"), afterSeq: try #require(firstPage.nextSeq), limit: 2)
            #expect(secondPage.records.map(\.seq) == [3, 4])
            let last = try await log.list(.init(eventType: "A"), afterSeq: try #require(secondPage.nextSeq), limit: 2)
            #expect(last.records.map(\.seq) == [5])
            #expect(last.nextSeq == nil)
            #expect(try await log.list(.init(entityType: "listing", entityId: "e-1"), limit: 50).records.count == 5)
            #expect(try await log.list(.init(sinceMicros: StoredTime.nowMicros() + 60_000_000), limit: 50).records.isEmpty)
        }
    }

    @Test(arguments: TestStores.kinds)
    func theBatchedAppenderWritesEverythingSubmittedOnOneChain(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let log = EvidenceLog(database: database)
            let appender = EvidenceAppender(log: log, completer: ShadowOutboxCompleter(), capacity: 10_000, batchSize: 64, logger: TestStores.logger,
                                            metrics: NOOPMetricsHandler.instance)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await appender.run() }
                // Admin-style appends inside their own transactions interleave with the queue's batches.
                group.addTask { for index in 0..<20 { try await log.append(event(90_000 + index, type: "ADMIN_ACTION")) } }
                for task in 0..<32 {
                    group.addTask {
                        for index in 0..<50 { #expect(appender.submit(event(task * 100 + index))) }
                    }
                }
                // Wait for the submitters and the admin appends, then for the queue to drain (bounded: a lost record
                // then fails the count below instead of waiting forever).
                let deadline = ContinuousClock.now + .seconds(120)
                while ContinuousClock.now < deadline, try await database.read({ sql in
                    try await sql.raw("SELECT count(*) AS n FROM evidence_records").first()!.decode(column: "n", as: Int.self)
                }) < 1620 {
                    try await Task.sleep(for: .milliseconds(20))
                }
                group.cancelAll()
            }
            let result = try await log.verify()
            #expect(result.valid)
            #expect(result.records == 1620)
            #expect(appender.queued == 0)
        }
    }

    @Test func aFullQueueDropsAndCountsInsteadOfWaiting() async throws {
        try await TestStores.withDatabase(.sqlite) { database in
            let appender = EvidenceAppender(log: EvidenceLog(database: database), completer: ShadowOutboxCompleter(), capacity: 10, batchSize: 4,
                                            logger: TestStores.logger, metrics: NOOPMetricsHandler.instance)
            let accepted = (0..<15).filter { appender.submit(event($0)) }.count
            #expect(accepted == 10)
            #expect(appender.queued == 10)
            try await appender.flush()
            #expect(appender.queued == 0)
            #expect(try await EvidenceLog(database: database).verify().records == 10)
        }
    }
}
