// Listing benchmarks: creates over HTTP (the script runs them with the shadow on and off), and the discrepancy
// verifier over a large table (both stores seeded with the same rows, a few of them made to differ).
import BallastConfig
import EvidenceStore
import Foundation
import Commerce
import Operations
import SQLKit
import Storage
import Telemetry

func runHTTPListings(_ arguments: [String]) async throws {
    guard let url = option(arguments, "--url"), let token = option(arguments, "--token") else {
        FileHandle.standardError.write(Data("http-listings needs --url and --token\n".utf8))
        exit(2)
    }
    let concurrency = Int(option(arguments, "--concurrency") ?? "16") ?? 16
    let seconds = Double(option(arguments, "--seconds") ?? "10") ?? 10
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    let (log, wall) = try await ClosedLoop.run(
        concurrency: concurrency, keepGoing: { _ in ContinuousClock.now < deadline },
        request: { number in
            ClosedLoop.post("\(url)/api/listings", token: token, body: #"{"title":"Bench listing \#(number)","price":\#(100 + number % 900)}"#)
        },
        counts: { $0 == 201 })
    let latency = log.latency()
    print(String(format: "tps=%.0f p50_ms=%.2f p99_ms=%.2f ok=%d failed=%@", Double(latency.count) / wall, latency.p50,
                 latency.p99, latency.count, "\(log.byStatus.filter { $0.key != 201 })"))
}

/// Seeds `--rows` listings into both stores (PostgreSQL: generated server-side), changes `--differ` of them in
/// the shadow, runs the verifier once and prints its figures and the process's peak memory.
func runVerifierBench(_ arguments: [String]) async throws {
    guard let primaryText = option(arguments, "--database-url"), let primaryURL = DatabaseURL.parse(primaryText),
          let shadowText = option(arguments, "--shadow-url"), let shadowURL = DatabaseURL.parse(shadowText),
          case .postgres = primaryURL, case .postgres = shadowURL
    else {
        FileHandle.standardError.write(Data("verifier needs --database-url and --shadow-url (PostgreSQL)\n".utf8))
        exit(2)
    }
    let rows = Int(option(arguments, "--rows") ?? "1000000") ?? 1_000_000
    let differ = Int(option(arguments, "--differ") ?? "100") ?? 100
    let metrics = MetricsRegistry()
    try await Database.withRunning(primaryURL, poolSize: 4, logger: logger) { primary in
        try await Database.withRunning(shadowURL, poolSize: 4, logger: logger) { shadow in
            try await Migrator(database: primary, logger: logger).migrate()
            try await Migrator(database: shadow, migrations: Schema.shadowMigrations, logger: logger).migrate()
            let seedSeconds = try await measure {
                try await primary.transaction { sql in
                    try await sql.raw("""
                        INSERT INTO users (id, name, role, token_hash, created_at_micros)
                        VALUES ('00000000-0000-0000-0000-0000000000b2', 'bench', 'member', repeat('b', 64), 0)
                        ON CONFLICT DO NOTHING
                        """).run()
                    try await sql.raw("""
                        INSERT INTO listings (id, owner_id, title, price, version, created_at_micros, updated_at_micros)
                        SELECT md5('l' || n)::uuid::text, '00000000-0000-0000-0000-0000000000b2', 'Listing ' || n, 100 + n % 900, 1, n, n
                        FROM generate_series(1, \(bind: rows)) AS n
                        """).run()
                }
                try await shadow.transaction { sql in
                    try await sql.raw("""
                        INSERT INTO listings (id, owner_id, title, price, version, created_at_micros, updated_at_micros, deleted)
                        SELECT md5('l' || n)::uuid::text, '00000000-0000-0000-0000-0000000000b2', 'Listing ' || n, 100 + n % 900, 1, n, n, 0
                        FROM generate_series(1, \(bind: rows)) AS n
                        """).run()
                    try await sql.raw("""
                        UPDATE listings SET price = price + 1 WHERE id IN (
                            SELECT md5('l' || n)::uuid::text FROM generate_series(1, \(bind: rows), \(bind: max(1, rows / max(1, differ)))) AS n)
                        """).run()
                    try await sql.raw("ANALYZE listings").run()
                }
                try await primary.transaction { sql in try await sql.raw("ANALYZE listings").run() }
            }
            let evidence = EvidenceLog(database: primary)
            let appender = EvidenceAppender(log: evidence, completer: ShadowOutboxCompleter(), logger: logger, metrics: metrics.factory)
            let verifier = ShadowVerifier(primary: primary, shadow: shadow, evidence: evidence, appender: appender, writer: nil,
                                          metrics: metrics.factory, logger: logger)
            let result = try await verifier.run(repair: false)
            print(String(format: "verifier rows=%d seeded_s=%.1f checked=%d mismatched=%d duration_s=%.2f rows_per_s=%.0f peak_rss_mb=%.0f",
                         rows, seedSeconds, result.checked, result.mismatched, result.durationSeconds,
                         Double(result.checked) / result.durationSeconds, peakResidentMegabytes()))
        }
    }
}

/// The process's peak resident set (VmHWM), in MiB.
func peakResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Double($0) } ?? 0
        return kilobytes / 1024
    }
    return 0
}
