import BallastCore
import Commerce
import DomainValues
import Foundation
import Logging
import Metrics
import SQLKit
import ServiceLifecycle
import Storage
import Synchronization

/// Runs jobs on a schedule and on demand, one run of a job at a time across every server process.
///
/// The lock is a lease row in `job_leases`, taken with one conditional update (free, or expired on the database's
/// clock) that also raises the row's fencing token; each run records itself in `job_runs` under that token. A run
/// renews its lease every third of ``leaseSeconds``; a renewal that finds the lease gone (it expired, another
/// process took it) or that cannot reach the store before the lease would expire cancels the run, and every write a
/// run makes that matters (evidence, discrepancies, repairs) first checks, in its own transaction, that the lease
/// with its token is still held (``JobLease/hold(in:)``). So a process paused past its lease, or cut off from the
/// store, can neither keep running nor write once another run has started. Schedules are shared too
/// (`next_run_at`), so several processes do not each run a job once per interval.
public final class JobRunner: Service, Sendable {
    /// How long a lease lasts without renewal, by default (JOB_LEASE_SECONDS).
    public static let defaultLeaseSeconds: Int64 = 30
    /// How often the scheduler looks for jobs that are due.
    static let tick: Duration = .seconds(1)

    let database: Database
    let jobs: [Job]
    let logger: Logger
    let isReady: @Sendable () -> Bool
    /// How long a lease lasts without renewal.
    let leaseSeconds: Int64
    /// This process's name on the leases it holds.
    let holder = UUID.random().lowercasedString
    private let rowsExist = Atomic<Bool>(false)

    let metrics: any MetricsFactory

    public init(
        database: Database, jobs: [Job], logger: Logger, leaseSeconds: Int64 = JobRunner.defaultLeaseSeconds,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance, isReady: @escaping @Sendable () -> Bool = { true }
    ) {
        self.metrics = metrics
        precondition(leaseSeconds >= 3, "a lease is renewed every third of it: at least three seconds")
        self.database = database
        self.jobs = jobs
        self.logger = logger
        self.leaseSeconds = leaseSeconds
        self.isReady = isReady
    }

    public func job(named name: String) -> Job? { jobs.first { $0.name == name } }

    /// The names of every job, in the order they were given.
    public var jobNames: [String] { jobs.map(\.name) }

    // MARK: On demand

    /// Runs the job now and answers how it ended; 409 job_running while a run holds its lease anywhere. `audit`
    /// is written in the same transaction that takes the lease (the trigger's ADMIN_ACTION record).
    public func trigger(
        _ name: String, parameters: Job.Parameters = .init(),
        audit: (@Sendable (Transaction) async throws -> Void)? = nil
    ) async throws -> JobRun {
        guard let job = job(named: name) else {
            throw AppError(.notFound, "no job named \(name); GET /api/admin/jobs lists them")
        }
        let asked = ContinuousClock.now
        guard let lease = try await acquire(job, onlyIfDue: false, audit: audit) else {
            throw AppError(.jobRunning, "\(name) is running; wait for it to finish and trigger it again",
                           details: ["job": .string(name)])
        }
        return await execute(job, parameters, lease, askedAt: asked)
    }

    // MARK: Listing

    public func statuses() async throws -> [JobStatus] {
        try await ensureRows()
        struct Row: Decodable {
            let name: String
            let holder: String?
            let lease_expires_at_micros: Int64?
            let last_run_at_micros: Int64?
            let last_status: String?
            let last_duration_micros: Int64?
            let next_run_at_micros: Int64?
            let now_micros: Int64
        }
        let rows = try await database.read { sql in
            try await sql.raw("""
                SELECT name, holder, lease_expires_at_micros, last_run_at_micros, last_status, last_duration_micros,
                       next_run_at_micros, \(database.nowMicros) AS now_micros
                FROM job_leases
                """).all(decoding: Row.self)
        }
        let byName = Dictionary(rows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return jobs.map { job in
            let row = byName[job.name]
            return JobStatus(
                name: job.name, intervalSeconds: job.intervalSeconds, enabled: job.enabled,
                running: row.map { $0.holder != nil && ($0.lease_expires_at_micros ?? 0) > $0.now_micros } ?? false,
                lastRunAt: row?.last_run_at_micros.map(StoredTime.date(fromMicros:)),
                lastStatus: row?.last_status.flatMap(JobRunStatus.init(rawValue:)),
                lastDurationSeconds: row?.last_duration_micros.map { Double($0) / 1_000_000 },
                nextRunAt: job.enabled ? row?.next_run_at_micros.map(StoredTime.date(fromMicros:)) : nil)
        }
    }

    // MARK: The schedule

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.tick)
                guard self.isReady(), !Task.isCancelled else { continue }
                do {
                    try await self.runDueJobs()
                } catch is CancellationError {
                    // Shutting down: nothing went wrong.
                } catch {
                    self.logger.warning("job scheduler could not check for due jobs", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Runs, one after another, every enabled job whose time has come and whose lease this process gets.
    public func runDueJobs() async throws {
        try await ensureRows()
        // One read finds what is due; only those are tried (with the due check repeated in the conditional
        // update), so an idle scheduler costs one read a second.
        let now = database.nowMicros
        struct DueRow: Decodable {
            let name: String
            let due: Int64
        }
        let rows = try await database.read { sql in
            try await sql.raw("""
                SELECT name, CAST(CASE WHEN (next_run_at_micros IS NULL OR next_run_at_micros <= \(now))
                  AND (holder IS NULL OR lease_expires_at_micros IS NULL OR lease_expires_at_micros <= \(now))
                  THEN 1 ELSE 0 END AS BIGINT) AS due
                FROM job_leases
                """).all(decoding: DueRow.self)
        }
        // A job whose row is missing (lost with a rebuilt store) is tried too: taking its lease makes the row again.
        let known = Dictionary(rows.map { ($0.name, $0.due == 1) }, uniquingKeysWith: { first, _ in first })
        for job in jobs where job.enabled && known[job.name] ?? true {
            let asked = ContinuousClock.now
            guard let lease = try await acquire(job, onlyIfDue: true, audit: nil) else { continue }
            _ = await execute(job, .init(), lease, askedAt: asked)
        }
    }

    // MARK: Leases

    /// Makes sure every job has its row (first start, or a job added by an upgrade); once per process.
    private func ensureRows() async throws {
        guard !rowsExist.load(ordering: .acquiring) else { return }
        try await database.transaction { sql in
            for job in jobs { try await insertLeaseRow(job, sql) }
        }
        rowsExist.store(true, ordering: .releasing)
    }

    /// Makes `job`'s lease row if it has none: free, due after one interval, its fence carried on from the runs
    /// already recorded (so a row made again after it was lost never repeats a fence of `job_runs`).
    private func insertLeaseRow(_ job: Job, _ sql: Transaction) async throws {
        try await sql.raw("""
            INSERT INTO job_leases (name, next_run_at_micros, fence)
            VALUES (\(bind: job.name), \(nextRun(job)),
                    COALESCE((SELECT max(fence) FROM job_runs WHERE name = \(bind: job.name)), 0))
            ON CONFLICT (name) DO NOTHING
            """).run()
    }

    /// Takes the job's lease if it is free or expired (on the database's clock), and for a scheduled run only if the
    /// run is due (decided with the lease row locked, so two schedulers never both run one interval's run); raises the
    /// fencing token, records the run, and runs `audit` in that transaction.
    private func acquire(
        _ job: Job, onlyIfDue: Bool, audit: (@Sendable (Transaction) async throws -> Void)?
    ) async throws -> JobLease? {
        try await ensureRows()
        // Each taking of a lease has a holder name of its own: a fence number repeats if the store is rebuilt, and an
        // old run of this process must never pass for a new one.
        let holder = "\(self.holder)/\(UUID.random().lowercasedString.prefix(8))", leaseMicros = leaseSeconds * 1_000_000
        return try await database.transaction { sql in
            struct Current: Decodable {
                let holder: String?
                let fence: Int64
                let lease_expires_at_micros: Int64?
                let next_run_at_micros: Int64?
            }
            func read(locked: Bool) async throws -> Current? {
                try await sql.raw("""
                    SELECT holder, fence, lease_expires_at_micros, next_run_at_micros FROM job_leases
                    WHERE name = \(bind: job.name)\(unsafeRaw: locked ? database.rowLock : "")
                    """).first(decoding: Current.self)
            }
            func takeable(_ row: Current, at now: Int64) -> Bool {
                let free = row.holder == nil || (row.lease_expires_at_micros ?? Int64.min) <= now
                return free && (!onlyIfDue || (row.next_run_at_micros ?? Int64.min) <= now)
            }
            // A look without the lock first: an attempt that will not take the lease never holds its row (paused
            // there, it would hold up the holder's renewals and fenced writes).
            var seen = try await read(locked: false)
            if seen == nil {
                // The row is gone (the store was rebuilt under running processes): it is made again, as at start-up.
                try await insertLeaseRow(job, sql)
                seen = try await read(locked: false)
            }
            guard let seen, takeable(seen, at: try await JobLease.clock(sql, database)) else { return nil }
            // Then the row is locked and the clock read after: an update that waited behind a fenced write of the
            // previous run (which only locks the row) would otherwise carry a start from before that write committed.
            guard let current = try await read(locked: true) else { return nil }
            let now = try await JobLease.clock(sql, database)
            guard takeable(current, at: now) else { return nil }
            // Recorded times never run backwards, even if the database's clock steps back: a run starts no earlier
            // than the last recorded end.
            struct LastEnd: Decodable {
                let finished_at_micros: Int64?
            }
            let lastEnd = try await sql.raw("""
                SELECT max(finished_at_micros) AS finished_at_micros FROM job_runs WHERE name = \(bind: job.name)
                """).first(decoding: LastEnd.self)?.finished_at_micros
            let start = max(now, lastEnd ?? now)
            let fence = current.fence + 1
            let expires = now + leaseMicros
            guard try await sql.raw("""
                UPDATE job_leases SET holder = \(bind: holder), lease_expires_at_micros = \(bind: expires),
                    started_at_micros = \(bind: start), fence = \(bind: fence)
                WHERE name = \(bind: job.name) AND fence = \(bind: current.fence)
                RETURNING fence
                """).first() != nil
            else { return nil }
            // Earlier runs that never recorded their end (their process died, or could not reach the store) lost their
            // lease: they are recorded so, ending no later than this run begins.
            try await sql.raw("""
                UPDATE job_runs SET finished_at_micros = \(bind: start), status = \(bind: JobRunStatus.leaseLost.rawValue)
                WHERE name = \(bind: job.name) AND fence < \(bind: fence) AND finished_at_micros IS NULL
                """).run()
            try await sql.raw("""
                INSERT INTO job_runs (name, fence, holder, started_at_micros)
                VALUES (\(bind: job.name), \(bind: fence), \(bind: holder), \(bind: start))
                """).run()
            try await audit?(sql)
            return JobLease(name: job.name, holder: holder, fence: fence, database: database)
        }
    }

    /// Runs the job under its lease: renewed every third of the lease; cancelled when a renewal finds the lease
    /// gone or cannot reach the store before it would expire. Records how it ended and lets the lease go.
    ///
    /// The body and the renewals are tasks of their own, raced: when the lease is lost the run answers at once and its
    /// body is cancelled, without waiting for a body slow to notice (a task group would wait for it). Whatever that
    /// body still does is fenced: its writes that matter check the lease first (``JobLease/hold(in:)``), and the
    /// lease has expired. So the run is recorded as ending when its lease did.
    ///
    /// `askedAt` is when the lease was asked for (monotonic clock): the lease runs from no earlier than that moment.
    private func execute(_ job: Job, _ parameters: Job.Parameters, _ lease: JobLease, askedAt: ContinuousClock.Instant) async -> JobRun {
        let started = ContinuousClock.now
        var parameters = parameters
        parameters.lease = lease
        let runParameters = parameters
        let race = RunRace()
        let body = Task {
            do {
                race.settle(.finished(.success(try await job.body(runParameters))))
            } catch {
                race.settle(.finished(.failure(error)))
            }
        }
        let renewedAt = LastRenewal(askedAt)
        let renewals = Task { if let lost = await self.keepRenewing(lease, renewedAt) { race.settle(lost) } }
        let event = await withTaskCancellationHandler {
            await race.outcome()
        } onCancel: {
            body.cancel()
            renewals.cancel()
        }
        renewals.cancel()
        let outcome: Result<JSONValue, any Error>
        switch event {
        case .finished(let result):
            outcome = result
        case .leaseLost(let why):
            // The lease is gone: stop the run now; it must not go on beside the next holder's.
            body.cancel()
            logger.error("job lost its lease; its run is cancelled", metadata: [
                "job": .string(job.name), "fence": .stringConvertible(Int(lease.fence)), "why": .string(why),
            ])
            outcome = .failure(LeaseLost(job: job.name, fence: lease.fence, why: why))
        }
        var status: JobRunStatus
        var result: JSONValue
        switch outcome {
        case .success(let value):
            status = .succeeded
            result = value
        case .failure(let error as LeaseLost):
            status = .leaseLost
            result = .object(["error": .string(String(describing: error))])
        case .failure(let error):
            status = .failed
            result = .object(["error": .string(String(describing: error))])
            logger.error("job failed", metadata: ["job": .string(job.name), "error": "\(error)"])
        }
        // Each run names its lease, so anyone can tell two runs apart and check that they never overlapped.
        if case .object(var fields) = result {
            fields["lease"] = .object(["holder": .string(lease.holder), "fence": .integer(lease.fence)])
            result = .object(fields)
        }
        let elapsed = ContinuousClock.now - started
        let micros = elapsed.wholeMicroseconds
        // Recorded even when the run was cancelled (a trigger whose caller went away, the process stopping): the
        // release runs in a task of its own, which does not inherit the cancellation.
        let bodyStatus = status
        do {
            status = try await Task { try await self.release(job, lease, status: bodyStatus, durationMicros: micros) }.value
        } catch {
            // Not recorded (as far as this process can tell): the next run to take the lease records this one as
            // lease_lost, ending no later than it began, and the answer says the same. (If the commit went through and
            // only its answer was lost, the record keeps the body's status; the answer's `unrecorded` says why they may
            // differ.)
            status = .leaseLost
            logger.warning("could not record a job run; its lease expires on its own", metadata: [
                "job": .string(job.name), "error": "\(error)",
            ])
            if case .object(var fields) = result {
                fields["unrecorded"] = .string("the run's end could not be recorded: \(error)")
                result = .object(fields)
            }
        }
        if status != bodyStatus {
            // The body ended (a process paused past its lease, then resumed) before a renewal could notice that the
            // lease had run out: the run did not end under its lease, and says so. The body's own error, if any, stays.
            logger.error("job ended after its lease had run out", metadata: [
                "job": .string(job.name), "fence": .stringConvertible(Int(lease.fence)), "bodyStatus": .string(bodyStatus.rawValue),
            ])
            if case .object(var fields) = result {
                if let bodyError = fields["error"] { fields["bodyError"] = bodyError }
                fields["error"] = .string(String(describing: LeaseLost(
                    job: job.name, fence: lease.fence, why: "the lease ran out before the run ended (its body ended \(bodyStatus.rawValue))")))
                result = .object(fields)
            }
        }
        Counter(label: "job_runs_total", dimensions: [("job", job.name), ("status", status.rawValue)], factory: metrics).increment()
        logger.info("job finished", metadata: [
            "job": .string(job.name), "status": .string(status.rawValue), "durationMs": .stringConvertible(micros / 1000),
            "fence": .stringConvertible(Int(lease.fence)),
        ])
        return JobRun(name: job.name, status: status, durationSeconds: Double(micros) / 1_000_000, result: result)
    }

    enum RunEvent: Sendable {
        case finished(Result<JSONValue, any Error>)
        /// Why the lease is gone.
        case leaseLost(String)
    }

    /// Renews `lease` every third of its length until cancelled; returns (ending the run) when the lease is gone, or
    /// when no renewal got through and the lease would expire before the next try could; nil when cancelled (the
    /// run ended, or the process is stopping: the body reports that itself).
    private func keepRenewing(_ lease: JobLease, _ renewedAt: LastRenewal) async -> RunEvent? {
        let every = Duration.seconds(leaseSeconds) / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: every)
            if Task.isCancelled { break }
            let asked = ContinuousClock.now
            do {
                guard try await lease.renew(forSeconds: leaseSeconds) != nil else {
                    return .leaseLost("another holder took the lease, or it expired")
                }
                renewedAt.instant = asked
            } catch {
                // Keep trying while the lease may still be ours; stop before it could have expired.
                if ContinuousClock.now - renewedAt.instant + every >= .seconds(leaseSeconds) {
                    return .leaseLost("could not renew the lease before it expired (\(error))")
                }
                logger.warning("could not renew a job lease; trying again", metadata: [
                    "job": .string(lease.name), "error": "\(error)",
                ])
            }
        }
        return nil
    }

    /// Records how the run ended, lets the lease go if it is still this run's, and answers the status recorded.
    ///
    /// Whether the run still held its lease is decided here, in the transaction that records the end, with the lease
    /// row locked first (PostgreSQL; SQLite's write lock is already held) and the clock read after the lock: a run
    /// whose lease ran out before it ended, however its body ended and whether or not a renewal noticed, is recorded
    /// `lease_lost`. Its end: now, if nobody took the lease over (nobody else can have started); if another run took it,
    /// no later than that run began. Taking a lease waits for every write a run's fence let through (the fence locks
    /// the lease row), so the next run's start comes after all of this run's effects: recorded runs of one job never
    /// overlap, and none of a run's effects falls outside its recorded time.
    private func release(_ job: Job, _ lease: JobLease, status: JobRunStatus, durationMicros: Int64) async throws -> JobRunStatus {
        struct LeaseRow: Decodable {
            let holder: String?
            let fence: Int64
            let lease_expires_at_micros: Int64?
        }
        struct NextRun: Decodable {
            let started_at_micros: Int64?
        }
        return try await database.transaction { sql in
            func read(locked: Bool) async throws -> LeaseRow? {
                try await sql.raw("""
                    SELECT holder, fence, lease_expires_at_micros FROM job_leases
                    WHERE name = \(bind: job.name)\(unsafeRaw: locked ? database.rowLock : "")
                    """).first(decoding: LeaseRow.self)
            }
            // The row is locked only while it may still be this run's: a run whose lease another took over never
            // holds the new holder's row (paused there, it would hold up its renewals). A fence only grows, so a row
            // that is not this run's now never becomes it again.
            guard let seen = try await read(locked: false) else { throw AppError(.internal, "the lease row of \(job.name) is missing") }
            let mayBeOurs = seen.holder == lease.holder && seen.fence == lease.fence
            let row = mayBeOurs ? try await read(locked: true) ?? seen : seen
            let now = try await JobLease.clock(sql, database)
            let ours = row.holder == lease.holder && row.fence == lease.fence
            let held = ours && (row.lease_expires_at_micros ?? 0) > now
            let recorded: JobRunStatus = held ? status : .leaseLost
            var ended = now
            if !ours {
                let next = try await sql.raw("""
                    SELECT min(started_at_micros) AS started_at_micros FROM job_runs
                    WHERE name = \(bind: job.name) AND fence > \(bind: lease.fence)
                    """).first(decoding: NextRun.self)
                if let started = next?.started_at_micros { ended = min(ended, started) }
            }
            // A run the next one already recorded as lease_lost (ending when it began) keeps that record. An end never
            // comes before the run's start, even if the database's clock stepped back.
            try await sql.raw("""
                UPDATE job_runs SET status = \(bind: recorded.rawValue),
                    finished_at_micros = CASE WHEN started_at_micros > \(bind: ended) THEN started_at_micros ELSE \(bind: ended) END
                WHERE name = \(bind: job.name) AND fence = \(bind: lease.fence) AND holder = \(bind: lease.holder)
                  AND finished_at_micros IS NULL
                """).run()
            if ours {
                // Still this run's lease (held, or run out with nobody taking it): it is let go, and the schedule and
                // "last run" move on.
                try await sql.raw("""
                    UPDATE job_leases SET holder = NULL, lease_expires_at_micros = NULL, last_run_at_micros = \(bind: now),
                        last_status = \(bind: recorded.rawValue), last_duration_micros = \(bind: durationMicros),
                        next_run_at_micros = \(nextRun(job))
                    WHERE name = \(bind: job.name) AND holder = \(bind: lease.holder) AND fence = \(bind: lease.fence)
                    """).run()
            }
            return recorded
        }
    }

    /// Now + the interval, give or take up to 10% (so processes started together spread their runs out), on the
    /// database's clock.
    private func nextRun(_ job: Job) -> SQLQueryString {
        let interval = Int64(job.intervalSeconds) * 1_000_000
        let jitter = Int64.random(in: -(interval / 10)...(interval / 10))
        return "\(database.nowMicros) + \(bind: interval + jitter)"
    }
}

/// A held lease: the job, the holder and the fencing token of one run.
public struct JobLease: Sendable, Equatable {
    public let name: String
    public let holder: String
    public let fence: Int64
    let database: Database

    public static func == (lhs: JobLease, rhs: JobLease) -> Bool {
        lhs.name == rhs.name && lhs.holder == rhs.holder && lhs.fence == rhs.fence
    }

    /// Extends the lease from now (database clock) and answers its new expiry; nil when it is no longer this run's.
    func renew(forSeconds seconds: Int64) async throws -> Int64? {
        try await database.transaction { sql in
            guard let now = try await heldNow(sql) else { return nil }
            let expires = now + seconds * 1_000_000
            try await sql.raw("""
                UPDATE job_leases SET lease_expires_at_micros = \(bind: expires)
                WHERE name = \(bind: name) AND holder = \(bind: holder) AND fence = \(bind: fence)
                """).run()
            return expires
        }
    }

    /// The fence of a write: inside the writing transaction, throws ``LeaseLost`` (rolling the write back) unless
    /// this run still holds an unexpired lease. On PostgreSQL the lease row stays locked until the transaction ends,
    /// so no other run can take it between the check and the commit (taking it waits for the lock).
    public func hold(in sql: Transaction) async throws {
        guard try await heldNow(sql) != nil else { throw LeaseLost(job: name, fence: fence, why: "the lease is no longer held") }
    }

    /// Locks this run's lease row, then reads the database's clock: the time, if the lease is still this run's and
    /// unexpired then, else nil. Reading the clock after the lock matters on PostgreSQL: a check that waited for the
    /// lock behind another transaction would otherwise judge expiry by the time it started waiting.
    private func heldNow(_ sql: Transaction) async throws -> Int64? {
        struct Expiry: Decodable {
            let lease_expires_at_micros: Int64?
        }
        guard let row = try await sql.raw("""
            SELECT lease_expires_at_micros FROM job_leases
            WHERE name = \(bind: name) AND holder = \(bind: holder) AND fence = \(bind: fence)\(unsafeRaw: database.rowLock)
            """).first(decoding: Expiry.self), let expires = row.lease_expires_at_micros
        else { return nil }
        let now = try await Self.clock(sql, database)
        return expires > now ? now : nil
    }

    /// The database's clock, read in a statement of its own.
    static func clock(_ sql: Transaction, _ database: Database) async throws -> Int64 {
        struct Clock: Decodable {
            let now_micros: Int64
        }
        guard let now = try await sql.raw("SELECT \(database.nowMicros) AS now_micros").first(decoding: Clock.self)?.now_micros
        else { throw StorageError.missingReturnedRow("the database's clock") }
        return now
    }
}

/// When the last renewal of a run's lease that got through was asked for (monotonic clock; the taking of the lease
/// at first): the lease runs from no earlier than that moment.
final class LastRenewal: Sendable {
    private let value: Mutex<ContinuousClock.Instant>
    init(_ instant: ContinuousClock.Instant) { value = Mutex(instant) }
    var instant: ContinuousClock.Instant {
        get { value.withLock { $0 } }
        set { value.withLock { $0 = newValue } }
    }
}

/// The first of a run's body and its renewals to end decides how the run ends.
final class RunRace: Sendable {
    private struct State {
        var event: JobRunner.RunEvent?
        var waiter: CheckedContinuation<JobRunner.RunEvent, Never>?
    }

    private let state = Mutex(State())

    func settle(_ event: JobRunner.RunEvent) {
        let waiter = state.withLock { state -> CheckedContinuation<JobRunner.RunEvent, Never>? in
            guard state.event == nil else { return nil }
            state.event = event
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: event)
    }

    func outcome() async -> JobRunner.RunEvent {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> JobRunner.RunEvent? in
                if let event = state.event { return event }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// A run's lease was lost: its writes stop.
public struct LeaseLost: Error, Sendable, Equatable, CustomStringConvertible {
    public let job: String
    public let fence: Int64
    public let why: String
    public var description: String { "\(job) run \(fence) lost its lease: \(why)" }
}

