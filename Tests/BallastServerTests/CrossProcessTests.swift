import BallastTestSupport
import ChaosKit
import Evidence
import EvidenceStore
import Foundation
import HTTPTypes
import Logging
import Commerce
import Operations
import SQLKit
import Storage
import Synchronization
import Testing

/// Races between processes sharing one store, lined up deterministically with failpoints that hold a request at
/// the worst moment: take-overs that must be compare-and-swaps, claims and leases that must be fenced, reads that
/// must share one snapshot, the first chaos change, repairs that must not move the shadow back.
@Suite("Cross-process races", .timeLimit(.minutes(10)))
struct CrossProcessTests {
    /// Waits (bounded) until a PostgreSQL backend of this database waits for a lock: the racing request has reached
    /// the row the held request locked. On SQLite, writers queue in the process; a short pause lets it queue.
    static func waitForLockWait(_ app: TestApp, kind: StoreKind) async throws {
        guard kind == .postgres else {
            try await Task.sleep(for: .milliseconds(300))
            return
        }
        for _ in 0..<200 {
            let waiting = try await app.integer("""
                SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
                """)
            if waiting > 0 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the racing request never waited for the held row")
    }

    /// Finding 1: a retry that finds an old in-flight claim takes it over only if it is still the claim it read. The
    /// first request is held after completing its key (row locked, not committed); the retry's take-over waits for
    /// that row, then must find it completed and replay the answer instead of applying the debit again.
    @Test(arguments: TestStores.kinds)
    func aTakeOverNeverOverwritesAKeyCompletedMeanwhile(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: ["IDEMPOTENCY_ABANDON_SECONDS": "1"]) { app in
            let member = try await app.createUser(name: "member")
            let wallet = try await app.openWallet(token: member)
            try await app.credit(wallet, 1000)
            var headers = HTTPFields()
            headers[HTTPField.Name("Idempotency-Key")!] = "take-over-1"
            try app.services.failpoints.arm(IdempotencyStore.Failpoint.afterComplete, .pause)
            let first = Task {
                try await app.request(.post, "/api/wallets/\(wallet)/debit", token: member, headers: headers, body: #"{"amount":10}"#)
            }
            #expect(await app.services.failpoints.waitUntilHeld(IdempotencyStore.Failpoint.afterComplete))
            // The first claim is now older than the abandonment window (1 s): a retry may try to take it over.
            try await Task.sleep(for: .milliseconds(1300))
            let second = Task {
                try await app.request(.post, "/api/wallets/\(wallet)/debit", token: member, headers: headers, body: #"{"amount":10}"#)
            }
            try await Self.waitForLockWait(app, kind: kind)
            app.services.failpoints.release(IdempotencyStore.Failpoint.afterComplete)
            let answers = [try await first.value, try await second.value]
            #expect(answers.map(\.status) == [.ok, .ok], "\(answers.map(\.body))")
            #expect(answers[1].headers[HTTPField.Name("Idempotent-Replayed")!] == "true", "the retry replays the first answer")
            #expect(answers[0].body == answers[1].body)
            #expect(try await app.balance(wallet) == 990, "one debit, not two (I9)")
            #expect(try await app.ledgerCount(wallet) == 2)
        }
    }

    /// Finding 5: the auditor reads one snapshot. A credit committed between its reads of the money held and of
    /// the money that came in must not be reported as money created.
    @Test(arguments: TestStores.kinds)
    func aCreditBetweenTheAuditorsReadsIsNotAViolation(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let wallet = try await app.openWallet(token: try await app.createUser(name: "member"))
            try await app.credit(wallet, 500)
            try app.services.failpoints.arm(InvariantAuditor.Failpoint.betweenReads, .pause)
            let audit = Task {
                try await app.request(.post, "/api/admin/jobs/ledger-invariant-auditor/trigger", token: TestApp.adminToken)
            }
            #expect(await app.services.failpoints.waitUntilHeld(InvariantAuditor.Failpoint.betweenReads))
            try await app.credit(wallet, 700)
            app.services.failpoints.release(InvariantAuditor.Failpoint.betweenReads)
            let result = try await audit.value
            #expect((result.json["result"] as? [String: Any])?["violations"] as? Int == 0, "\(result.body)")
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'INVARIANT_VIOLATION'") == 0)
        }
    }

    /// Found by the memory soak: 10,001 wallets near the maximum balance hold more than Int64 in all, and the
    /// auditor's system totals (summed as BIGINT) failed with an overflow instead of auditing. The totals are exact
    /// now: a balanced store is clean, and one unit missing from one ledger is found.
    @Test(arguments: TestStores.kinds)
    func systemTotalsBeyondSixtyFourBitsAreAuditedExactly(kind: StoreKind) async throws {
        try await TestApp.run(kind) { app in
            let member = try await app.request(.get, "/api/users/me", token: try await app.createUser(name: "rich"))
            let owner = try #require(member.json["id"] as? String)
            let each: Int64 = 1_000_000_000_000_000
            try await app.services.primary.transaction { sql in
                try await sql.raw("""
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
                    INSERT INTO wallets (id, owner_id, currency, balance, created_at_micros)
                    SELECT 'rich-' || i, \(bind: owner), 'USD', \(bind: each), 0 FROM n
                    """).run()
                try await sql.raw("""
                    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
                    INSERT INTO wallet_transactions (id, wallet_id, kind, amount, balance_after, reference, order_id, created_at_micros)
                    SELECT 'rich-credit-' || i, 'rich-' || i, 'credit', \(bind: each), \(bind: each), NULL, NULL, 0 FROM n
                    """).run()
            }
            let clean = try await app.request(.post, "/api/admin/jobs/ledger-invariant-auditor/trigger", token: TestApp.adminToken)
            #expect((clean.json["result"] as? [String: Any])?["violations"] as? Int == 0, "\(clean.body)")
            // One unit taken from one balance without its ledger row: that wallet and the system total are off by one.
            try await app.services.primary.transaction { sql in
                try await sql.raw("UPDATE wallets SET balance = balance - 1 WHERE id = 'rich-7'").run()
            }
            let broken = try await app.request(.post, "/api/admin/jobs/ledger-invariant-auditor/trigger", token: TestApp.adminToken)
            #expect((broken.json["result"] as? [String: Any])?["violations"] as? Int == 2, "\(broken.body)")
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'INVARIANT_VIOLATION' AND entity_id IN ('rich-7', 'money')") == 2)
        }
    }

    /// Finding 8: the first chaos change of two processes at once. The stored row always exists (version 0), so the
    /// second change waits for the first and becomes version 2; both processes end on the same settings.
    @Test(arguments: TestStores.kinds)
    func twoFirstChaosChangesAreTwoVersionsAndEveryProcessAgrees(kind: StoreKind) async throws {
        try await TestApp.runTwo(kind) { first, second in
            try first.services.failpoints.arm(ChaosService.Failpoint.changeAfterLock, .pause)
            let a = Task {
                try await first.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"failRate":0.25}"#)
            }
            #expect(await first.services.failpoints.waitUntilHeld(ChaosService.Failpoint.changeAfterLock))
            let b = Task {
                try await second.request(.put, "/api/admin/chaos", token: TestApp.adminToken, body: #"{"seed":"second"}"#)
            }
            try await Self.waitForLockWait(first, kind: kind)
            first.services.failpoints.release(ChaosService.Failpoint.changeAfterLock)
            let answers = [try await a.value, try await b.value]
            #expect(answers.map(\.status) == [.ok, .ok], "\(answers.map(\.body))")
            #expect(Set(answers.compactMap { $0.json["version"] as? Int }) == [1, 2])
            await first.services.chaosMonitor.tick()
            await second.services.chaosMonitor.tick()
            for app in [first, second] {
                let state = app.services.injector.state
                #expect(state.version == 2 && state.failRate == 0.25 && state.seed == "second", "\(state)")
            }
            #expect(try await first.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'CHAOS_CONFIG_CHANGED'") == 2)
        }
    }

    /// Finding 9: with the store unreachable, a tripped steady-state guard switches injection off in the process at
    /// once, says why in `/health`; its evidence is written once the store answers, exactly once.
    @Test(arguments: TestStores.kinds)
    func theGuardSwitchesChaosOffAtOnceAndRecordsItOnce(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: ["CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "0.1"]) { (app: TestApp) async throws in
            for _ in 0..<150 { app.services.steadyState.record(serverError: true) }
            let chaos = app.services.chaos
            // What the monitor does first needs no store: the decision and its reason.
            chaos.switchOffNow(reason: "steady-state guard: test")
            #expect(!app.services.injector.state.isLive())
            #expect((try await app.request(.get, "/health").json["chaos"] as? [String: Any])?["reason"] as? String
                    == "steady-state guard: test")
            // Recorded once, however often the monitor comes round.
            await app.services.chaosMonitor.tick()
            await app.services.chaosMonitor.tick()
            #expect(try await app.integer("SELECT count(*) AS n FROM evidence_records WHERE event_type = 'CHAOS_CONFIG_CHANGED'") == 1)
            #expect(app.services.injector.state.version == 1)
        }
    }

    /// Finding 3: a run whose lease is taken away is cancelled, and its fenced writes are refused.
    @Test(arguments: TestStores.kinds)
    func aJobThatLosesItsLeaseStopsAndWritesNothing(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let wrote = Locked(false)
            let started = Locked(false)
            let ended = Locked(false)
            // A body slow to notice: it waits 30 s in a way cancellation does not cut short, then tries to write.
            let long = Job(name: "long", intervalSeconds: 3600, enabled: true) { parameters in
                started.withLock { $0 = true }
                defer { ended.withLock { $0 = true } }
                await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                    DispatchQueue.global().asyncAfter(deadline: .now() + 30) { done.resume() }
                }
                try await database.transaction { sql in
                    try await parameters.lease?.hold(in: sql)
                    wrote.withLock { $0 = true }
                }
                return .object([:])
            }
            let runner = JobRunner(database: database, jobs: [long], logger: TestStores.logger, leaseSeconds: 3)
            let run = Task { try await runner.trigger("long") }
            for _ in 0..<100 where !started.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
            // Another process takes the lease (as it would once this one's had expired).
            try await database.transaction { sql in
                try await sql.raw("UPDATE job_leases SET holder = 'someone-else', fence = fence + 1 WHERE name = 'long'").run()
            }
            let clock = ContinuousClock.now
            let result = try await run.value
            // Well before the body's 30 s: the renewal (every second) found the lease gone and ended the run.
            #expect(ContinuousClock.now - clock < .seconds(20), "the run ended when the renewal found the lease gone")
            #expect(result.status == .leaseLost)
            let recorded = try await database.read { sql in
                try await sql.raw("SELECT status FROM job_runs WHERE name = 'long' AND fence = 1").first()?
                    .decode(column: "status", as: String?.self)
            }
            #expect(recorded == "lease_lost")
            // The body goes on a while, then its fenced write is refused.
            for _ in 0..<800 where !ended.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(50)) }
            #expect(ended.withLock { $0 })
            #expect(!wrote.withLock { $0 })
            var lease: Int64?
            if case .object(let fields) = result.result, case .object(let held)? = fields["lease"],
               case .integer(let fence)? = held["fence"] {
                lease = fence
            }
            #expect(lease == 1, "the run names its fencing token")
        }
    }

    struct RunRow: Decodable {
        let fence: Int64
        let started_at_micros: Int64
        let finished_at_micros: Int64?
        let status: String?
    }

    static func runs(_ database: Database, _ job: String) async throws -> [RunRow] {
        try await database.read { sql in
            try await sql.raw("""
                SELECT fence, started_at_micros, finished_at_micros, status FROM job_runs WHERE name = \(bind: job) ORDER BY fence
                """).all(decoding: RunRow.self)
        }
    }

    struct LeaseRow: Decodable {
        let holder: String?
        let last_status: String?
    }

    static func lease(_ database: Database, _ job: String) async throws -> LeaseRow? {
        try await database.read { sql in
            try await sql.raw("SELECT holder, last_status FROM job_leases WHERE name = \(bind: job)").first(decoding: LeaseRow.self)
        }
    }

    /// A run whose body ends after its lease ran out and another process took it over (its own process paused past the
    /// lease, then resumed), before any renewal could notice: it did not end under its lease. It is recorded
    /// `lease_lost`, ending no later than the next run began, never `succeeded` across the next run's start; and it
    /// leaves the next holder's lease alone.
    @Test(arguments: TestStores.kinds)
    func aRunThatEndsAfterItsLeaseWasTakenIsRecordedLeaseLost(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let now = database.nowMicros
            let quick = Job(name: "quick", intervalSeconds: 3600, enabled: true) { _ in
                // While the body runs, its lease runs out and another process takes it over and starts its run, as
                // taking a lease does.
                try await database.transaction { sql in
                    try await sql.raw("UPDATE job_leases SET lease_expires_at_micros = \(now) - 1 WHERE name = 'quick'").run()
                    try await sql.raw("""
                        UPDATE job_leases SET holder = 'someone-else', fence = fence + 1, started_at_micros = \(now),
                            lease_expires_at_micros = \(now) + 30000000
                        WHERE name = 'quick' AND lease_expires_at_micros <= \(now)
                        """).run()
                    try await sql.raw("""
                        INSERT INTO job_runs (name, fence, holder, started_at_micros)
                        SELECT name, fence, holder, started_at_micros FROM job_leases WHERE name = 'quick'
                        """).run()
                }
                return .object(["checked": .integer(1)])
            }
            // Renewals come every 10 s: the body ends long before one could notice.
            let runner = JobRunner(database: database, jobs: [quick], logger: TestStores.logger, leaseSeconds: 30)
            let result = try await runner.trigger("quick")
            #expect(result.status == .leaseLost)
            let runs = try await Self.runs(database, "quick")
            try #require(runs.count == 2)
            #expect(runs[0].status == "lease_lost")
            let finished = try #require(runs[0].finished_at_micros)
            #expect(finished <= runs[1].started_at_micros, "the lost run is recorded as ending before the next began")
            #expect(try await Self.lease(database, "quick")?.holder == "someone-else", "the next holder keeps its lease")
        }
    }

    /// A run whose body ends after its lease ran out, nobody having taken it yet: recorded `lease_lost` (its answer
    /// too, keeping what the body said), the lease let go with `lease_lost` as the last status, and the next run starts
    /// after it ended.
    @Test(arguments: TestStores.kinds)
    func aRunThatEndsAfterItsLeaseRanOutLetsItGoAsLeaseLost(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let now = database.nowMicros
            let expiring = Job(name: "expiring", intervalSeconds: 3600, enabled: true) { parameters in
                if parameters.lease?.fence == 1 {
                    try await database.transaction { sql in
                        try await sql.raw("UPDATE job_leases SET lease_expires_at_micros = \(now) - 1 WHERE name = 'expiring'").run()
                    }
                }
                return .object(["checked": .integer(1)])
            }
            let runner = JobRunner(database: database, jobs: [expiring], logger: TestStores.logger, leaseSeconds: 30)
            let first = try await runner.trigger("expiring")
            #expect(first.status == .leaseLost)
            if case .object(let fields) = first.result {
                #expect(fields["checked"] == .integer(1), "what the body found is still in the answer")
                #expect(fields["error"]?.string?.contains("ran out") == true)
            }
            let lease = try #require(try await Self.lease(database, "expiring"))
            #expect(lease.holder == nil, "the lease is let go")
            #expect(lease.last_status == "lease_lost")
            // The next run takes the lease at once and runs normally, after the first ended.
            let second = try await runner.trigger("expiring")
            #expect(second.status == .succeeded)
            let runs = try await Self.runs(database, "expiring")
            try #require(runs.count == 2)
            #expect(runs.map(\.status) == ["lease_lost", "succeeded"])
            #expect(try #require(runs[0].finished_at_micros) <= runs[1].started_at_micros)
        }
    }

    /// A run that never recorded its end (its process was killed, or lost the store) is recorded `lease_lost` by the
    /// next run to take the lease, ending when that run began.
    @Test(arguments: TestStores.kinds)
    func theNextRunRecordsAnUnfinishedOneAsLeaseLost(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let now = database.nowMicros
            let job = Job(name: "orphaned", intervalSeconds: 3600, enabled: true) { _ in .object([:]) }
            let runner = JobRunner(database: database, jobs: [job], logger: TestStores.logger, leaseSeconds: 30)
            _ = try await runner.statuses()
            // A process took the lease (fence 7), started its run and died; its lease has run out.
            try await database.transaction { sql in
                try await sql.raw("""
                    UPDATE job_leases SET holder = 'dead-process', fence = 7, started_at_micros = \(now) - 60000000,
                        lease_expires_at_micros = \(now) - 30000000
                    WHERE name = 'orphaned'
                    """).run()
                try await sql.raw("""
                    INSERT INTO job_runs (name, fence, holder, started_at_micros)
                    VALUES ('orphaned', 7, 'dead-process', \(now) - 60000000)
                    """).run()
            }
            #expect(try await runner.trigger("orphaned").status == .succeeded)
            let runs = try await Self.runs(database, "orphaned")
            try #require(runs.count == 2)
            #expect(runs.map(\.fence) == [7, 8])
            #expect(runs.map(\.status) == ["lease_lost", "succeeded"])
            #expect(runs[0].finished_at_micros == runs[1].started_at_micros, "it ended no later than the next began")
        }
    }

    /// A lease row lost with a rebuilt store (its runs kept) is made again by the scheduler, with its fence carried on
    /// from the recorded runs: the next run neither collides with an old run's record nor waits for a restart.
    @Test(arguments: TestStores.kinds)
    func aLostLeaseRowIsMadeAgainWithItsFenceCarriedOn(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let job = Job(name: "rebuilt", intervalSeconds: 3600, enabled: true) { _ in .object([:]) }
            let runner = JobRunner(database: database, jobs: [job], logger: TestStores.logger, leaseSeconds: 30)
            #expect(try await runner.trigger("rebuilt").status == .succeeded)
            try await database.transaction { sql in
                try await sql.raw("DELETE FROM job_leases WHERE name = 'rebuilt'").run()
            }
            try await runner.runDueJobs()
            struct Fence: Decodable { let fence: Int64 }
            let row = try await database.read { sql in
                try await sql.raw("SELECT fence FROM job_leases WHERE name = 'rebuilt'").first(decoding: Fence.self)
            }
            #expect(row?.fence == 1, "the scheduler made the row again, its fence carried on from the recorded run")
            #expect(try await runner.trigger("rebuilt").status == .succeeded)
            let runs = try await Self.runs(database, "rebuilt")
            #expect(runs.map(\.fence) == [1, 2])
            #expect(runs.map(\.status) == ["succeeded", "succeeded"])
        }
    }

    /// Finding 2: claims are fenced per row and renewed just before each attempt, so a slow batch's later rows are
    /// never delivered by a second dispatcher while the first still holds them.
    @Test(arguments: TestStores.kinds)
    func aSlowBatchIsNeverDeliveredTwiceAtOnce(kind: StoreKind) async throws {
        try await FakeProvider.with { provider in
            // 3 s per delivery keeps 2 s from the 5 s delivery timeout, so a loaded machine does not turn a slow
            // answer into a failed attempt (left pending for its retry).
            provider.answer { $0.delay = .seconds(3) }
            let environment = ["NOTIFY_WEBHOOK_URL": provider.url + "/hooks", "NOTIFY_CLAIM_SECONDS": "10"]
            try await TestApp.runTwo(kind, environment: environment) { first, second in
                // 16 orders: 32 notifications, one batch of 32 delivered 8 at a time, 3 s each: 12 s in all.
                for _ in 0..<16 { _ = try await first.placeNotifiedOrder() }
                let batch = Task { try await first.services.dispatcher.runOnce() }
                // Past the first claim's 10 s, another dispatcher looks for due rows.
                try await Task.sleep(for: .seconds(10.5))
                // It may take over rows whose claim expired before the first got to them (a slow machine); the first
                // then finds its claim gone and leaves them. What it must never do is deliver a row the first holds.
                _ = try await second.services.dispatcher.runOnce()
                #expect(try await batch.value == 32)
                #expect(provider.overlappingKeys.isEmpty, "no notification delivered by two dispatchers at once")
                #expect(provider.requests.count == 32, "each notification delivered once")
                let statuses = try await first.notificationStatuses()
                #expect(statuses.values.reduce(0, +) == 32)
                // Every row is sent, except one whose 3 s answer a loaded machine stretched past the 5 s timeout: that
                // attempt counts as failed and the row waits for its retry (at least once, never twice at once). Any
                // other row left unsent (a lost outcome, a claim never released, dead) is a failure.
                struct Unsent: Decodable, Sendable {
                    let status: String
                    let attempts: Int64
                    let last_error: String?
                }
                let unsent = try await first.services.primary.read { sql in
                    try await sql.raw("SELECT status, CAST(attempts AS BIGINT) AS attempts, last_error FROM notifications WHERE status <> 'sent'")
                        .all(decoding: Unsent.self)
                }
                for row in unsent {
                    #expect(row.status == "pending" && row.attempts >= 1
                            && row.last_error?.hasPrefix("the webhook did not answer") == true, "\(row)")
                }
            }
        }
    }

    /// Finding 6: a shadow write held by an injected delay, or still queued in another process, is in flight, not a
    /// discrepancy the verifier blames on anyone.
    @Test(arguments: TestStores.kinds)
    func writesStillInFlightAreNotDiscrepancies(kind: StoreKind) async throws {
        // Far longer than the verifier waits for the local queue to settle (5 s, twice), so a loaded machine cannot
        // stretch its run past the delay.
        let environment = ["CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "1", "CHAOS_LATENCY_MS": "40000"]
        try await TestApp.run(kind, environment: environment, shadow: .fresh) { app in
            let owner = try await app.createUser(name: "owner")
            _ = try await app.createListing(token: owner, title: "Held back")
            let result = try await app.verify()
            #expect(result["unexplained"] as? Int == 0, "\(result)")
            #expect(result["missingInShadow"] as? Int == 0, "\(result)")
            #expect(result["inFlight"] as? Int == 1, "\(result)")
        }
    }

    @Test(arguments: TestStores.kinds)
    func aWriteQueuedInAnotherProcessIsInFlight(kind: StoreKind) async throws {
        try await TestApp.runTwo(kind, shadow: .fresh, startShadowWorkers: false) { writer, verifier in
            let owner = try await writer.createUser(name: "owner")
            _ = try await writer.createListing(token: owner, title: "Queued elsewhere")
            #expect(writer.services.shadowWriter?.pending == 1)
            let result = try await verifier.verify()
            #expect(result["unexplained"] as? Int == 0 && result["inFlight"] as? Int == 1, "\(result)")
            // The writer then applies it and the verifier finds nothing.
            writer.startShadowWorkers()
            try await writer.settleShadow()
            let after = try await verifier.verify()
            #expect(after["missingInShadow"] as? Int == 0 && after["inFlight"] as? Int == 0, "\(after)")
        }
    }

    /// Finding 6: a repair reads the primary's row, and a newer write lands in the shadow before the repair writes:
    /// the repair must not move the shadow back to the older version.
    @Test(arguments: TestStores.kinds)
    func aRepairNeverMovesTheShadowBackToAnOlderVersion(kind: StoreKind) async throws {
        try await TestApp.run(kind, shadow: .fresh) { app in
            let owner = try await app.createUser(name: "owner")
            let listing = try await app.createListing(token: owner, title: "Desk")
            try await app.settleShadow()
            // A discrepancy to repair: the shadow's title was tampered with (same version).
            try await app.onShadow("UPDATE listings SET title = 'tampered' WHERE id = \(bind: listing)")
            try app.services.failpoints.arm(ShadowVerifier.Failpoint.repairBeforeOverwrite, .pause)
            let repair = Task { _ = try await app.verify(repair: true) }
            #expect(await app.services.failpoints.waitUntilHeld(ShadowVerifier.Failpoint.repairBeforeOverwrite))
            // Meanwhile the owner edits the listing (version 2) and its shadow write lands.
            let edited = try await app.request(.patch, "/api/listings/\(listing)", token: owner, body: #"{"title":"Oak desk"}"#)
            #expect(edited.json["version"] as? Int == 2)
            try await app.settleShadow()
            app.services.failpoints.release(ShadowVerifier.Failpoint.repairBeforeOverwrite)
            _ = try await repair.value
            #expect(try await app.shadowCount("SELECT version AS n FROM listings WHERE id = \(bind: listing)") == 2)
            #expect(try await app.shadowCount("SELECT count(*) AS n FROM listings WHERE id = \(bind: listing) AND title = 'Oak desk'") == 1)
        }
    }

    /// Finding 7: an evidence batch written twice (its commit's answer lost) leaves one record of each event.
    @Test(arguments: TestStores.kinds)
    func anEventWrittenTwiceIsRecordedOnce(kind: StoreKind) async throws {
        try await TestStores.withDatabase(kind) { database in
            let log = EvidenceLog(database: database)
            let events = (0..<5).map { index in
                EvidenceEvent(controlId: "CC-7.2", category: "ProcessingIntegrity", eventType: "SHADOW_WRITE_FAILURE",
                              eventOutcome: "FAILURE", entityType: "listing", entityId: "l-\(index)", key: "shadow-failure:l-\(index):1")
            }
            #expect(try await log.append(events).count == 5)
            #expect(try await log.append(events).count == 0, "the second write of the batch adds nothing")
            #expect(try await log.append(events + events).count == 0)
            let verification = try await log.verify()
            #expect(verification.records == 5 && verification.valid)
        }
    }
}

extension TestApp {
    /// Two apps (two processes' worth of services, each with its own pools) on one fresh store of `kind`, and, when
    /// asked, one shared fresh shadow store.
    static func runTwo(
        _ kind: StoreKind, environment: [String: String] = [:], shadow: Shadow = .none, startShadowWorkers: Bool = true,
        _ body: @escaping @Sendable (TestApp, TestApp) async throws -> Void
    ) async throws {
        try await TestStores.withFreshURL(kind) { url in
            try await Database.withRunning(url, poolSize: 10, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) { one in
                try await Migrator(database: one, logger: TestStores.logger).migrate()
                try await Database.withRunning(url, poolSize: 10, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) { two in
                    switch shadow {
                    case .fresh:
                        try await TestStores.withFreshURL(kind) { shadowURL in
                            try await Database.withRunning(shadowURL, poolSize: 5, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) { shadowOne in
                                try await Database.withRunning(shadowURL, poolSize: 5, poolWait: TestStores.poolWait, connectWait: TestStores.connectWait, logger: TestStores.logger) { shadowTwo in
                                    try await pair(one, two, shadows: (shadowOne, shadowTwo), environment: environment,
                                                   workers: startShadowWorkers, body)
                                }
                            }
                        }
                    default:
                        try await pair(one, two, shadows: nil, environment: environment, workers: startShadowWorkers, body)
                    }
                }
            }
        }
    }

    private static func pair(
        _ one: Database, _ two: Database, shadows: (Database, Database)?, environment: [String: String], workers: Bool,
        _ body: @escaping @Sendable (TestApp, TestApp) async throws -> Void
    ) async throws {
        try await start(one, shadow: shadows?.0, environment: environment, workers: workers, subscribers: [], live: false,
                        configure: { _ in }) { first in
            try await start(two, shadow: shadows?.1, environment: environment, workers: workers, subscribers: [], live: false,
                            configure: { _ in }) { second in
                try await body(first, second)
            }
        }
    }
}
