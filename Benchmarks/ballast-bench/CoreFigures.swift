// Core figures: fault-check cost, evidence append and verify rates (see main.swift for how to run).
import BallastConfig
import ChaosKit
import Evidence
import EvidenceStore
import Foundation
import Logging
import Commerce
import Operations
import Metrics
import SQLKit
import Storage
import Telemetry

let logger = LogOutput.makeLogger(label: "bench", level: .error, sink: .standardError)

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func measure(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    return seconds(ContinuousClock.now - start)
}

func sampleEvent(_ index: Int) -> EvidenceEvent {
    EvidenceEvent(
        .shadowWriteFailure, outcome: .failure, entityType: "listing",
        entityId: "listing-\(index)", requestId: "req-\(index)", details: ["failureType": "injected", "operation": "create"])
}

// MARK: Fault checks

func benchmarkFaultChecks() {
    let injector = FaultInjector(
        state: ChaosState(enabled: true, failRate: 0.1, scope: .allWrites, seed: "bench", expiresAt: nil,
                          latencyMilliseconds: 0, abortErrorRate: 0.01),
        environment: .test, metrics: NOOPMetricsHandler.instance, logger: logger)
    let calls = 5_000_000
    var fired = 0
    let start = ContinuousClock.now
    for _ in 0..<calls where injector.decide(.shadowListingCreate)?.fires == true { fired += 1 }
    let live = seconds(ContinuousClock.now - start)

    var off = injector.state
    off.enabled = false
    injector.apply(off)
    let offStart = ContinuousClock.now
    for _ in 0..<calls where injector.decide(.shadowListingCreate) != nil { fired += 1 }
    let disabled = seconds(ContinuousClock.now - offStart)
    print(String(format: "fault check, injection live:      %7.1f ns/call (%d calls, %d fired)", live / Double(calls) * 1e9, calls, fired))
    print(String(format: "fault check, injection off:       %7.1f ns/call", disabled / Double(calls) * 1e9))
}

// MARK: Evidence

func benchmarkEvidence(_ url: DatabaseURL, label: String) async throws {
    try await Database.withRunning(url, poolSize: 16, logger: logger) { database in
        try await Migrator(database: database, logger: logger).migrate()
        let log = EvidenceLog(database: database)
        let writers = 32

        // One record per transaction, as admin actions append.
        let perWriterDirect = 50
        let direct = try await measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask { for index in 0..<perWriterDirect { try await log.append(sampleEvent(writer * 1000 + index)) } }
                }
                try await group.waitForAll()
            }
        }
        let directCount = writers * perWriterDirect
        print(String(format: "[%@] evidence, one per transaction: %8.0f appends/s (%d writers, %d records)",
                     label, Double(directCount) / direct, writers, directCount))

        // Through the batched appender, as shadow-write failures are recorded.
        let appender = EvidenceAppender(log: log, completer: ShadowOutboxCompleter(), capacity: 100_000, batchSize: 256, logger: logger, metrics: NOOPMetricsHandler.instance)
        let perWriterQueued = 1000
        let queuedCount = writers * perWriterQueued
        let queued = try await measure {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await appender.run() }
                for writer in 0..<writers {
                    group.addTask { for index in 0..<perWriterQueued { _ = appender.submit(sampleEvent(writer * 10_000 + index)) } }
                }
                while try await log.head()?.seq ?? 0 < Int64(directCount + queuedCount) {
                    try await Task.sleep(for: .milliseconds(5))
                }
                group.cancelAll()
            }
        }
        print(String(format: "[%@] evidence, batched appender:    %8.0f appends/s (%d writers, %d records)",
                     label, Double(queuedCount) / queued, writers, queuedCount))

        var result: EvidenceLog.Verification?
        let verify = try await measure { result = try await log.verify() }
        print(String(format: "[%@] evidence verify:               %8.0f records/s (%lld records, valid: %@)",
                     label, Double(result!.records) / verify, result!.records, result!.valid ? "yes" : "NO"))

        // Where the time goes: reading rows through the listing API (the generic row layer) versus recomputing
        // hashes in memory. Verification itself reads PostgreSQL rows with the driver's typed decoding.
        var records: [EvidenceRecord] = []
        let read = try await measure {
            var after: Int64 = 0
            while true {
                let page = try await log.list(.init(), afterSeq: after, limit: 1000)
                records += page.records
                guard let next = page.nextSeq else { break }
                after = next
            }
        }
        var checker = ChainVerifier()
        let hashing = await measure { for record in records { checker.check(record) } }
        print(String(format: "[%@]   listing rows: %8.0f records/s; hashing in memory: %8.0f records/s",
                     label, Double(records.count) / read, Double(records.count) / hashing))
    }
}


/// Fault checks, then evidence on SQLite and (with `postgresServer`) PostgreSQL.
func runCoreFigures(postgresServer: DatabaseURL.PostgresLocation?) async throws {
    benchmarkFaultChecks()

    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ballast-bench-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: folder) }
    try await benchmarkEvidence(.sqliteFile(path: folder.appendingPathComponent("bench.sqlite").path), label: "sqlite")

    if let server = postgresServer {
        let name = "ballast_bench_\(UInt32.random(in: .min ... .max))"
        try await Database.withRunning(.postgres(server), poolSize: 1, logger: logger) { admin in
            try await admin.read { sql in try await sql.raw("CREATE DATABASE \(ident: name)").run() }
        }
        do {
            try await benchmarkEvidence(.postgres(server.withDatabase(name)), label: "postgres")
        } catch {
            print("postgres benchmark failed: \(error)")
        }
        try await Database.withRunning(.postgres(server), poolSize: 1, logger: logger) { admin in
            try await admin.read { sql in try await sql.raw("DROP DATABASE IF EXISTS \(ident: name) WITH (FORCE)").run() }
        }
    } else {
        print("(set BALLAST_BENCH_POSTGRES_URL to a postgres:// URL to measure PostgreSQL as well)")
    }
}
