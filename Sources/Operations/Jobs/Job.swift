import BallastCore
import Foundation

/// A named background job: what it does, how often the scheduler runs it, and whether it is on.
public struct Job: Sendable {
    /// What a run is asked to do (from the trigger's query; the scheduler passes none).
    public struct Parameters: Sendable, Equatable {
        /// For the discrepancy verifier: make the shadow match the primary for what it finds.
        public var repair: Bool
        /// The lease this run holds (set by the runner): its writes that matter check it first
        /// (``JobLease/hold(in:)``), so a run whose lease was lost writes nothing.
        public var lease: JobLease?

        public init(repair: Bool = false, lease: JobLease? = nil) {
            self.repair = repair
            self.lease = lease
        }
    }

    public let name: String
    public let intervalSeconds: Int
    public let enabled: Bool
    /// Does the work and answers its result (a JSON object shown by the trigger endpoint and kept as the job's
    /// last result).
    public let body: @Sendable (Parameters) async throws -> JSONValue

    public init(name: String, intervalSeconds: Int, enabled: Bool, body: @escaping @Sendable (Parameters) async throws -> JSONValue) {
        precondition(intervalSeconds > 0, "a job runs at an interval of at least one second")
        self.name = name
        self.intervalSeconds = intervalSeconds
        self.enabled = enabled
        self.body = body
    }
}

/// A job as `GET /api/admin/jobs` shows it.
public struct JobStatus: Sendable, Equatable {
    public let name: String
    public let intervalSeconds: Int
    public let enabled: Bool
    /// A run holds the lease right now, in any process.
    public let running: Bool
    public let lastRunAt: Date?
    public let lastStatus: JobRunStatus?
    public let lastDurationSeconds: Double?
    public let nextRunAt: Date?
}

/// How a run ended, as `job_runs.status`, `lastStatus` and the trigger's answer say it.
public enum JobRunStatus: String, Sendable, CaseIterable {
    /// The body finished and the run held its lease to the end.
    case succeeded
    /// The body threw, the run holding its lease to the end.
    case failed
    /// The lease ran out (expired, or another process took it) before the run ended, or the run's end could not be
    /// recorded: whatever the body did after that was fenced. Recorded as ending when the run noticed, and never
    /// later than the next run began (the next run records one that never recorded its end).
    case leaseLost = "lease_lost"
}

/// How one run ended.
public struct JobRun: Sendable, Equatable {
    public let name: String
    public let status: JobRunStatus
    public let durationSeconds: Double
    public let result: JSONValue
}
