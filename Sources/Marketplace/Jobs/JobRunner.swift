import Foundation
import Logging
import SQLKit
import ServiceLifecycle
import Storage
import Synchronization

/// Runs jobs on a schedule and on demand, one run of a job at a time across every server process.
///
/// The lock is a lease row in `job_leases`, taken with one conditional update (free, or expired) and renewed
/// while the run lasts; a process that dies mid-run stops renewing, its lease expires after ``leaseSeconds`` and
/// the next run proceeds. Schedules are shared too (`next_run_at` in the same row), so several processes do
/// not each run a job once per interval.
public final class JobRunner: Service, Sendable {
    /// How long a lease lasts without renewal.
    public static let leaseSeconds: Int64 = 30
    /// How often a running job renews its lease.
    static let renewEvery: Duration = .seconds(10)
    /// How often the scheduler looks for jobs that are due.
    static let tick: Duration = .seconds(1)

    let database: Database
    let jobs: [Job]
    let logger: Logger
    let isReady: @Sendable () -> Bool
    /// This process's name on the leases it holds.
    let holder = UUID().uuidString.lowercased()
    private let rowsExist = Atomic<Bool>(false)

    public init(database: Database, jobs: [Job], logger: Logger, isReady: @escaping @Sendable () -> Bool = { true }) {
        self.database = database
        self.jobs = jobs
        self.logger = logger
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
        audit: (@Sendable (any SQLDatabase) async throws -> Void)? = nil
    ) async throws -> JobRun {
        guard let job = job(named: name) else {
            throw AppError(.notFound, "no job named \(name); GET /api/admin/jobs lists them")
        }
        guard try await acquire(job, onlyIfDue: false, audit: audit) else {
            throw AppError(.jobRunning, "\(name) is running; wait for it to finish and trigger it again",
                           details: ["job": .string(name)])
        }
        return await execute(job, parameters)
    }

    // MARK: Listing

    public func statuses() async throws -> [JobStatus] {
        try await ensureRows()
        let now = StoredTime.nowMicros()
        let rows = try await database.read { sql in
            try await sql.raw("SELECT \(unsafeRaw: LeaseRow.columnList) FROM job_leases").all(decoding: LeaseRow.self)
        }
        let byName = Dictionary(rows.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        return jobs.map { job in
            let row = byName[job.name]
            return JobStatus(
                name: job.name, intervalSeconds: job.intervalSeconds, enabled: job.enabled,
                running: row.map { $0.holder != nil && ($0.lease_expires_at_micros ?? 0) > now } ?? false,
                lastRunAt: row?.last_run_at_micros.map(StoredTime.date(fromMicros:)), lastStatus: row?.last_status,
                lastDurationSeconds: row?.last_duration_micros.map { Double($0) / 1_000_000 },
                nextRunAt: job.enabled ? row?.next_run_at_micros.map(StoredTime.date(fromMicros:)) : nil)
        }
    }

    // MARK: The schedule

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: Self.tick)
                guard self.isReady() else { continue }
                do {
                    try await self.runDueJobs()
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
        let now = StoredTime.nowMicros()
        let due = try await database.read { sql in
            try await sql.raw("""
                SELECT name FROM job_leases WHERE (next_run_at_micros IS NULL OR next_run_at_micros <= \(bind: now))
                  AND (holder IS NULL OR lease_expires_at_micros IS NULL OR lease_expires_at_micros <= \(bind: now))
                """).all(decoding: NameRow.self)
        }.map(\.name)
        for job in jobs where job.enabled && due.contains(job.name) {
            guard try await acquire(job, onlyIfDue: true, audit: nil) else { continue }
            _ = await execute(job, .init())
        }
    }

    // MARK: Leases

    /// Makes sure every job has its row (first start, or a job added by an upgrade); once per process.
    private func ensureRows() async throws {
        guard !rowsExist.load(ordering: .acquiring) else { return }
        try await database.transaction { sql in
            for job in jobs {
                try await sql.raw("""
                    INSERT INTO job_leases (name, next_run_at_micros) VALUES (\(bind: job.name), \(bind: nextRun(job)))
                    ON CONFLICT (name) DO NOTHING
                    """).run()
            }
        }
        rowsExist.store(true, ordering: .releasing)
    }

    /// Takes the job's lease if it is free or expired, and for a scheduled run only if the run is due (checked
    /// in the same conditional update, so two schedulers never both run one interval's run); runs `audit` in
    /// that transaction.
    private func acquire(
        _ job: Job, onlyIfDue: Bool, audit: (@Sendable (any SQLDatabase) async throws -> Void)?
    ) async throws -> Bool {
        try await ensureRows()
        let now = StoredTime.nowMicros()
        return try await database.transaction { sql in
            var update: SQLQueryString = """
                UPDATE job_leases SET holder = \(bind: holder), lease_expires_at_micros = \(bind: now + Self.leaseSeconds * 1_000_000),
                    started_at_micros = \(bind: now)
                WHERE name = \(bind: job.name) AND (holder IS NULL OR lease_expires_at_micros IS NULL OR lease_expires_at_micros <= \(bind: now))
                """
            if onlyIfDue { update += " AND (next_run_at_micros IS NULL OR next_run_at_micros <= \(bind: now))" }
            update += " RETURNING name"
            let taken = try await sql.raw(update).first()
            guard taken != nil else { return false }
            try await audit?(sql)
            return true
        }
    }

    /// Runs the job while renewing its lease, records how it ended and when it runs next, and lets the lease go.
    private func execute(_ job: Job, _ parameters: Job.Parameters) async -> JobRun {
        let started = ContinuousClock.now
        let renewal = Task {
            while !Task.isCancelled {
                try await Task.sleep(for: Self.renewEvery)
                try await self.renew(job)
            }
        }
        let status: String
        let result: JSONValue
        do {
            result = try await job.body(parameters)
            status = "succeeded"
        } catch {
            status = "failed"
            result = .object(["error": .string(String(describing: error))])
            logger.error("job failed", metadata: ["job": .string(job.name), "error": "\(error)"])
        }
        renewal.cancel()
        let elapsed = ContinuousClock.now - started
        let micros = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        do {
            try await release(job, status: status, durationMicros: micros)
        } catch {
            logger.warning("could not record a job run; its lease expires on its own", metadata: [
                "job": .string(job.name), "error": "\(error)",
            ])
        }
        logger.info("job finished", metadata: [
            "job": .string(job.name), "status": .string(status), "durationMs": .stringConvertible(micros / 1000),
        ])
        return JobRun(name: job.name, status: status, durationSeconds: Double(micros) / 1_000_000, result: result)
    }

    private func renew(_ job: Job) async throws {
        let now = StoredTime.nowMicros()
        try await database.transaction { sql in
            try await sql.raw("""
                UPDATE job_leases SET lease_expires_at_micros = \(bind: now + Self.leaseSeconds * 1_000_000)
                WHERE name = \(bind: job.name) AND holder = \(bind: holder)
                """).run()
        }
    }

    private func release(_ job: Job, status: String, durationMicros: Int64) async throws {
        let now = StoredTime.nowMicros()
        try await database.transaction { sql in
            try await sql.raw("""
                UPDATE job_leases SET holder = NULL, lease_expires_at_micros = NULL, last_run_at_micros = \(bind: now),
                    last_status = \(bind: status), last_duration_micros = \(bind: durationMicros),
                    next_run_at_micros = \(bind: nextRun(job))
                WHERE name = \(bind: job.name) AND holder = \(bind: holder)
                """).run()
        }
    }

    /// Now + the interval, give or take up to 10% (so processes started together spread their runs out).
    private func nextRun(_ job: Job) -> Int64 {
        let interval = Int64(job.intervalSeconds) * 1_000_000
        let jitter = Int64.random(in: -(interval / 10)...(interval / 10))
        return StoredTime.nowMicros() + interval + jitter
    }
}

struct NameRow: Decodable {
    let name: String
}

struct LeaseRow: Decodable {
    static let columnList = """
        name, holder, lease_expires_at_micros, last_run_at_micros, last_status, last_duration_micros, next_run_at_micros
        """
    let name: String
    let holder: String?
    let lease_expires_at_micros: Int64?
    let last_run_at_micros: Int64?
    let last_status: String?
    let last_duration_micros: Int64?
    let next_run_at_micros: Int64?
}
