import NIOCore
import NIOPosix
import SQLKit
import SQLiteNIO
import Synchronization
import Tracing

/// Group commit for SQLite's write transactions.
///
/// SQLite lets one writer at a time hold the file, and every commit waits for the disk (`synchronous=FULL`), so
/// writers taking turns one transaction each are bounded by one disk flush per transaction, however little each
/// one does. Here the writers queued at one moment share one SQLite transaction and one flush:
///
/// - A caller queues its transaction's body. When no batch is running, the caller becomes the leader; otherwise it
///   waits, and at the end of each batch the first caller still waiting is made the next leader.
/// - The leader takes every queued body (at most ``maximumBatch``) and runs the batch in a task of its own (so the
///   leader's cancellation cannot fail the others' writes): `BEGIN IMMEDIATE`, then each body inside a savepoint of
///   its own, under its own caller's trace context. A body that throws is rolled back to its savepoint, and only its
///   own caller gets the error (its writes are gone, the others' stay). Then one `COMMIT`.
/// - Every caller is answered only after the `COMMIT` succeeded: nobody sees an answer for writes that are not yet
///   durable. If the batch itself fails after it began (a savepoint statement, the `COMMIT`), the whole transaction
///   is rolled back and every body runs again, alone in a transaction of its own, so every answer is one a serial
///   run could give and no body's failure ever becomes another's (bodies may run more than once, as a retried
///   transaction's do: ``Database/transaction(_:)``). If `BEGIN` fails, every caller gets that error, as each would
///   have alone.
/// - A batch of one is a plain transaction (`BEGIN IMMEDIATE`, the body, `COMMIT`), without savepoints.
///
/// Each caller's body runs as if it were the only transaction: all or nothing, in a serial order (the batch's),
/// seeing the writes of the bodies before it, its outcome told only to itself. A caller that waits longer than its
/// `wait` before its batch takes it gets ``StorageError/poolTimeout`` and its body never runs; a caller cancelled
/// before its body starts gets `CancellationError` and its body never runs; once its body started, it waits for
/// its batch to end.
final class WriteBatcher: Sendable {
    /// The most bodies one batch runs: enough to absorb a burst of concurrent writers, few enough that the first
    /// one's answer is not held back long by the last.
    static let maximumBatch = 128

    typealias Work = @Sendable (any SQLDatabase) async throws -> any Sendable
    typealias Outcome = Result<any Sendable, any Error>
    /// Runs one batch of jobs, setting each one's `outcome`, waiting at most the given time for a connection.
    typealias Execute = @Sendable ([Job], Duration) async -> Void

    /// One caller's transaction body and where its answer goes. `phase`, `continuation` and `timer` are guarded by the
    /// batcher's lock; `outcome` is written only by the batch that took the job, before it resumes the caller; `work`
    /// is dropped by the caller once answered (nothing runs it after that).
    final class Job: @unchecked Sendable {
        enum Phase { case queued, leading, taken, answered }
        var work: Work?
        var phase = Phase.queued
        var continuation: CheckedContinuation<Signal, Never>?
        var timer: Scheduled<Void>?
        var outcome: Outcome?
        /// The caller was cancelled: if its body has not started, it never will.
        let cancelled = Atomic<Bool>(false)

        init(work: @escaping Work) {
            self.work = work
        }
    }

    enum Signal {
        case finished(Outcome)
        /// Run the next batch (it holds this caller's own job).
        case lead
    }

    private struct State {
        var queue: [Job] = []
        /// A leader is running a batch, or has been told to start one.
        var leading = false
        var closed = false
    }

    private let state = Mutex(State())
    private let maximumWaiters: Int

    /// How many batches ran and how many bodies they held, for tests that check bodies really share commits.
    private let figures = Mutex((batches: 0, bodies: 0))
    var batchFigures: (batches: Int, bodies: Int) { figures.withLock { $0 } }

    init(maximumWaiters: Int) {
        self.maximumWaiters = maximumWaiters
    }

    /// Refuses every caller from now on (the pool is closing).
    func close() {
        state.withLock { $0.closed = true }
    }

    /// Runs `body` in a shared write transaction and answers its value, or its error, once the transaction is
    /// durable (or has failed). `execute` runs one batch, should this caller lead one.
    func run<R: Sendable>(
        wait: Duration, execute: @escaping Execute, _ body: (any SQLDatabase) async throws -> R
    ) async throws -> R {
        // The body runs on the batch's task while this one waits for its answer, and never after it: a job leaves
        // the queue either taken (then this caller waits for the end of its batch) or expired or cancelled before it
        // started.
        try await withoutActuallyEscaping(body) { escaping in
            let unchecked = UncheckedBody(body: escaping)
            // The body runs on another task: it gets its own caller's trace context, not the batch's.
            let context = InstrumentationContext.current
            let job = Job(work: { sql in
                try await InstrumentationContext.withValue(context) { try await unchecked.body(sql) }
            })
            // Cancelled while queued, it leaves at once; cancelled later (leading or taken), its body is skipped if
            // it has not started.
            let outcome = await withTaskCancellationHandler {
                var signal = await submit(job, wait: wait)
                while true {
                    switch signal {
                    case .finished(let outcome):
                        return outcome
                    case .lead:
                        // A task of its own, which this caller's cancellation does not reach: the batch holds other
                        // callers' writes.
                        signal = .finished(await Task { await lead(job, wait: wait, execute: execute) }.value)
                    }
                }
            } onCancel: {
                cancel(job)
            }
            // The body must not outlive this call: the job (kept by a finished batch's list) lets go of it.
            job.work = nil
            // Only this call's job carries this outcome, made by its own body: always an `R`.
            return try outcome.get() as! R
        }
    }

    private struct UncheckedBody<R>: @unchecked Sendable {
        let body: (any SQLDatabase) async throws -> R
    }

    private enum Admission {
        case lead, wait, refuse(any Error)
    }

    private func submit(_ job: Job, wait: Duration) async -> Signal {
        await withCheckedContinuation { (continuation: CheckedContinuation<Signal, Never>) in
            let admission = state.withLock { state -> Admission in
                if state.closed { return .refuse(StorageError.unavailable("the SQLite pool is closed")) }
                if job.cancelled.load(ordering: .acquiring) { return .refuse(CancellationError()) }
                if state.queue.count >= maximumWaiters { return .refuse(StorageError.poolQueueFull) }
                job.continuation = continuation
                state.queue.append(job)
                guard state.leading else {
                    state.leading = true
                    job.phase = .leading
                    return .lead
                }
                return .wait
            }
            switch admission {
            case .lead:
                continuation.resume(returning: .lead)
            case .refuse(let error):
                continuation.resume(returning: .finished(.failure(error)))
            case .wait:
                // Fails the job if no batch has taken it by then; cancelled when one does.
                let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(wait.wholeNanoseconds)) { [weak job] in
                    if let job { self.remove(job, .failure(StorageError.poolTimeout(waitedMilliseconds: Int(wait.wholeMilliseconds)))) }
                }
                let taken = state.withLock { _ -> Bool in
                    guard job.phase == .queued else { return true }
                    job.timer = timer
                    return false
                }
                if taken { timer.cancel() }
            }
        }
    }

    /// The caller was cancelled: out of the queue if it still waits there; otherwise its body is skipped if it has not
    /// started.
    private func cancel(_ job: Job) {
        job.cancelled.store(true, ordering: .releasing)
        remove(job, .failure(CancellationError()))
    }

    /// Answers `job` with `outcome` if it still waits in the queue (not taken, not leading).
    private func remove(_ job: Job, _ outcome: Outcome) {
        let removed = state.withLock { state -> (CheckedContinuation<Signal, Never>?, Scheduled<Void>?)? in
            guard job.phase == .queued, let index = state.queue.firstIndex(where: { $0 === job }) else { return nil }
            state.queue.remove(at: index)
            job.phase = .answered
            defer { job.timer = nil }
            return (job.continuation, job.timer)
        }
        guard let (continuation, timer) = removed else { return }
        timer?.cancel()
        continuation?.resume(returning: .finished(outcome))
    }

    /// Runs one batch holding `own` (first in the queue), answers every other caller in it, hands the lead to the
    /// first caller still waiting, and answers `own`'s outcome.
    private func lead(_ own: Job, wait: Duration, execute: Execute) async -> Outcome {
        let (jobs, timers) = state.withLock { state -> ([Job], [Scheduled<Void>]) in
            let taken = Array(state.queue.prefix(Self.maximumBatch))
            state.queue.removeFirst(taken.count)
            var timers: [Scheduled<Void>] = []
            for job in taken {
                job.phase = .taken
                if let timer = job.timer { timers.append(timer) }
                job.timer = nil
            }
            return (taken, timers)
        }
        for timer in timers { timer.cancel() }
        precondition(jobs.first === own, "a leader's own job is first in its batch")
        await execute(jobs, wait)
        figures.withLock { $0.batches += 1; $0.bodies += jobs.count }
        let next = state.withLock { state -> Job? in
            guard let first = state.queue.first else {
                state.leading = false
                return nil
            }
            first.phase = .leading
            return first
        }
        let unanswered = StorageError.unavailable("the write batch ended without an answer")
        for job in jobs.dropFirst() {
            job.continuation?.resume(returning: .finished(job.outcome ?? .failure(unanswered)))
        }
        if let next {
            let timer = state.withLock { _ -> Scheduled<Void>? in
                defer { next.timer = nil }
                return next.timer
            }
            timer?.cancel()
            next.continuation?.resume(returning: .lead)
        }
        return own.outcome ?? .failure(unanswered)
    }
}

extension WriteBatcher {
    /// One batch on `sql` (a connection the caller holds): `BEGIN IMMEDIATE`, each job in its own savepoint, one
    /// `COMMIT`; sets every job's outcome (see the type's rules). Marks `lease` broken when the connection's
    /// transaction state is unknown.
    static func runBatch(_ jobs: [Job], on sql: any SQLDatabase, lease: ConnectionLease) async {
        if jobs.count == 1 {
            await runAlone(jobs[0], on: sql, lease: lease)
            return
        }
        do {
            try await beginImmediate(sql) { jobs.contains { !$0.cancelled.load(ordering: .acquiring) } }
        } catch {
            for job in jobs { job.outcome = .failure(error) }
            return
        }
        var batchFailure: (any Error)?
        var outcomes: [Outcome] = []
        for job in jobs {
            guard !job.cancelled.load(ordering: .acquiring) else {
                outcomes.append(.failure(CancellationError()))
                continue
            }
            do {
                try await sql.raw("SAVEPOINT ballast_write").run()
            } catch {
                batchFailure = error
                break
            }
            do {
                guard let work = job.work else { throw StorageError.unavailable("a write was answered before it ran") }
                outcomes.append(.success(try await work(sql)))
            } catch {
                outcomes.append(.failure(error))
                do {
                    try await sql.raw("ROLLBACK TO ballast_write").run()
                } catch {
                    batchFailure = error
                    break
                }
            }
            do {
                try await sql.raw("RELEASE ballast_write").run()
            } catch {
                batchFailure = error
                break
            }
        }
        if batchFailure == nil {
            do {
                try await sql.raw("COMMIT").run()
                for (job, outcome) in zip(jobs, outcomes) { job.outcome = outcome }
                return
            } catch {
                batchFailure = error
            }
        }
        let failure = batchFailure ?? StorageError.unavailable("the write batch failed")
        do {
            try await sql.raw("ROLLBACK").run()
        } catch {
            // A connection whose transaction state is unknown must never serve another caller, nor this batch again.
            lease.markBroken()
            for job in jobs { job.outcome = .failure(failure) }
            return
        }
        // Nothing of the batch stayed: each body runs again alone, so every answer is one a serial run gives.
        for job in jobs { await runAlone(job, on: sql, lease: lease) }
    }

    /// `BEGIN IMMEDIATE`: takes the file's write lock, waiting at most ``SQLiteBackend/busyTimeoutMilliseconds`` for
    /// another process to let go of it.
    ///
    /// SQLite's own wait polls the lock at widening intervals, up to 100 ms apart. Another process that writes
    /// without pause (its batches follow each other within microseconds) frees the lock only for those microseconds,
    /// so a writer polling ten times a second could miss them all for seconds on end and give up. A writer's
    /// connection waits at most ``SQLiteBackend/writeLockPollMilliseconds`` per try (SQLite polls at 0, 1, 3 and
    /// 5 ms), and here it tries again at once: hundreds of looks a second, so waiting writers get their turn. It stops
    /// trying (`CancellationError`) once nobody it would begin for is still waiting (`wanted` answers false).
    static func beginImmediate(_ sql: any SQLDatabase, wanted: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .milliseconds(SQLiteBackend.busyTimeoutMilliseconds)
        while true {
            do {
                try await sql.raw("BEGIN IMMEDIATE").run()
                return
            } catch let error as SQLiteError where ErrorClassifier.isBusy(error) && ContinuousClock.now < deadline {
                guard wanted() else { throw CancellationError() }
            }
        }
    }

    /// `job` in a transaction of its own: `BEGIN IMMEDIATE`, its body, `COMMIT` (or `ROLLBACK` when it throws).
    private static func runAlone(_ job: Job, on sql: any SQLDatabase, lease: ConnectionLease) async {
        guard !lease.isBroken else {
            job.outcome = .failure(StorageError.unavailable("the connection's transaction state is unknown"))
            return
        }
        guard !job.cancelled.load(ordering: .acquiring) else {
            job.outcome = .failure(CancellationError())
            return
        }
        do {
            guard let work = job.work else { throw StorageError.unavailable("a write was answered before it ran") }
            try await beginImmediate(sql) { !job.cancelled.load(ordering: .acquiring) }
            // The wait for the lock may have outlasted the caller: a body not started is not started now.
            job.outcome = .success(try await Database.runBegun(sql, lease: lease) { sql in
                if job.cancelled.load(ordering: .acquiring) { throw CancellationError() }
                return try await work(sql)
            })
        } catch {
            job.outcome = .failure(error)
        }
    }
}
