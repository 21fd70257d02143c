import BallastServer
import BallastTestSupport
import DomainValues
import Foundation
import HTTPTypes
import Logging
import Commerce
import Operations
import SQLKit
import Storage
import Testing

@Suite("Jobs", .timeLimit(.minutes(10)))
struct JobTests {
    @Test(arguments: TestStores.kinds)
    func jobsAreListedTriggeredAndAudited(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .fresh) { app in
            let member = try await app.createUser(name: "member")
            #expect(try await app.request(.get, "/api/admin/jobs", token: member).status == .forbidden)
            let listed = try await app.request(.get, "/api/admin/jobs", token: TestApp.adminToken)
            let jobs = try #require((try? JSONSerialization.jsonObject(with: Data(listed.body.utf8))) as? [[String: Any]])
            #expect(jobs.compactMap { $0["name"] as? String }
                    == ["shadow-discrepancy-verifier", "ledger-invariant-auditor", "idempotency-key-cleanup"])
            let verifier = try #require(jobs.first)
            #expect(verifier["intervalSeconds"] as? Int == 900)
            #expect(verifier["enabled"] as? Bool == true)
            #expect(verifier["running"] as? Bool == false)
            #expect(verifier["lastRunAt"] is NSNull)
            #expect(verifier["nextRunAt"] as? String != nil)

            #expect(try await app.request(.post, "/api/admin/jobs/nope/trigger", token: TestApp.adminToken).status == .notFound)
            #expect(try await app.request(.post, "/api/admin/jobs/ledger-invariant-auditor/trigger", token: member).status == .forbidden)
            #expect(try await app.request(.post, "/api/admin/jobs/shadow-discrepancy-verifier/trigger?repair=maybe",
                                          token: TestApp.adminToken).status == .unprocessableContent)

            // The auditor: clean, then one tampered balance is one violation with one evidence record.
            let wallet = try await app.openWallet(token: member)
            try await app.credit(wallet, 500)
            let clean = try await app.request(.post, "/api/admin/jobs/ledger-invariant-auditor/trigger", token: TestApp.adminToken)
            #expect(clean.json["status"] as? String == "succeeded")
            #expect((clean.json["result"] as? [String: Any])?["violations"] as? Int == 0)
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE wallets SET balance = balance + 1 WHERE id = \(bind: wallet)").run()
            }
            let dirty = try await app.request(.post, "/api/admin/jobs/ledger-invariant-auditor/trigger", token: TestApp.adminToken)
            let result = try #require(dirty.json["result"] as? [String: Any])
            #expect(result["violations"] as? Int == 2, "the wallet against its ledger, and the system's money total")
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'INVARIANT_VIOLATION'") == 2)
            #expect(try await app.integer("""
                SELECT count(*) AS n FROM evidence_records WHERE event_type = 'INVARIANT_VIOLATION' AND entity_id = \(bind: wallet)
                """) == 1)
            #expect(try await app.adminActions("ledger-invariant-auditor").count == 2)
            #expect(try await app.metric(#"invariant_violations_total{invariant="I2"}"#) == 2)
            #expect(try await app.metric(#"invariant_violations_total{invariant="I1"}"#) == 0)
            #expect(try await app.metric(#"job_runs_total{job="ledger-invariant-auditor",status="succeeded"}"#) == 2)

            let cleanup = try await app.request(.post, "/api/admin/jobs/idempotency-key-cleanup/trigger", token: TestApp.adminToken)
            #expect((cleanup.json["result"] as? [String: Any])?["deleted"] as? Int == 0)
            let after = try await app.request(.get, "/api/admin/jobs", token: TestApp.adminToken)
            let auditor = try #require(((try? JSONSerialization.jsonObject(with: Data(after.body.utf8))) as? [[String: Any]])?[1])
            #expect(auditor["lastStatus"] as? String == "succeeded")
            #expect(auditor["lastRunAt"] as? String != nil)
        }
    }

    @Test(arguments: TestStores.kinds)
    func aHeldLeaseRefusesARunUntilItExpires(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            _ = try await app.request(.get, "/api/admin/jobs", token: TestApp.adminToken)  // the lease rows exist
            let future = Int64(Date().timeIntervalSince1970 * 1_000_000) + 60_000_000
            try await app.services.primary.transaction { sql in
                try await sql.raw("""
                    UPDATE job_leases SET holder = 'a-process-that-died', lease_expires_at_micros = \(bind: future)
                    WHERE name = 'idempotency-key-cleanup'
                    """).run()
            }
            let refused = try await app.request(.post, "/api/admin/jobs/idempotency-key-cleanup/trigger", token: TestApp.adminToken)
            #expect(refused.status == .conflict)
            #expect(refused.errorCode == "job_running")
            let listed = try await app.request(.get, "/api/admin/jobs", token: TestApp.adminToken)
            #expect(listed.body.contains(#""name":"idempotency-key-cleanup","nextRunAt""#) || listed.body.contains(#""running":true"#))
            // The holder died: once its lease expires, the next run proceeds.
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE job_leases SET lease_expires_at_micros = 1 WHERE name = 'idempotency-key-cleanup'").run()
            }
            let ran = try await app.request(.post, "/api/admin/jobs/idempotency-key-cleanup/trigger", token: TestApp.adminToken)
            #expect(ran.status == .ok)
            #expect(ran.json["status"] as? String == "succeeded")
        }
    }

    /// Two schedulers (two runners with their own pools on one store) never run one job twice at once.
    @Test(arguments: TestStores.kinds)
    func twoProcessesNeverRunAJobAtTheSameTime(kind: StoreKind) async throws {
        try await TestStores.withFreshURL(kind) { url in
            try await Database.withRunning(url, poolSize: 5, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) { first in
                try await Migrator(database: first, logger: TestStores.logger).migrate()
                try await Database.withRunning(url, poolSize: 5, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) { second in
                    let intervals = Locked<[(start: ContinuousClock.Instant, end: ContinuousClock.Instant)]>([])
                    let sleeper = Job(name: "sleeper", intervalSeconds: 3600, enabled: true) { _ in
                        let start = ContinuousClock.now
                        try await Task.sleep(for: .milliseconds(50))
                        intervals.withLock { $0.append((start, ContinuousClock.now)) }
                        return .object([:])
                    }
                    let runners = [first, second].map { JobRunner(database: $0, jobs: [sleeper], logger: TestStores.logger) }
                    let tally = Locked<[String: Int]>([:])
                    try await withThrowingTaskGroup(of: Void.self) { group in
                        for index in 0..<40 {
                            group.addTask {
                                do {
                                    _ = try await runners[index % 2].trigger("sleeper")
                                    tally.withLock { $0["ran", default: 0] += 1 }
                                } catch let error as AppError where error.code == .jobRunning {
                                    tally.withLock { $0["refused", default: 0] += 1 }
                                }
                            }
                        }
                        try await group.waitForAll()
                    }
                    let counts = tally.withLock { $0 }
                    #expect((counts["ran"] ?? 0) + (counts["refused"] ?? 0) == 40)
                    #expect((counts["ran"] ?? 0) >= 1)
                    let runs = intervals.withLock { $0 }.sorted { $0.start < $1.start }
                    #expect(runs.count == counts["ran"])
                    for (earlier, later) in zip(runs, runs.dropFirst()) {
                        #expect(earlier.end <= later.start, "two runs overlapped")
                    }
                    // The scheduler runs a due job once, whichever process gets there first.
                    try await first.transaction { sql in
                        try await sql.raw("UPDATE job_leases SET next_run_at_micros = 1 WHERE name = 'sleeper'").run()
                    }
                    async let a: Void = runners[0].runDueJobs()
                    async let b: Void = runners[1].runDueJobs()
                    _ = try await (a, b)
                    #expect(intervals.withLock { $0.count } == runs.count + 1)
                }
            }
        }
    }
}
