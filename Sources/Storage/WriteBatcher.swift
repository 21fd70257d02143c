import NIOCore
import NIOPosix
import SQLKit
import Synchronization

/// Group commit for SQLite's write transactions.
///
/// SQLite lets one writer at a time hold the file, and every commit waits for the disk (`synchronous=FULL`), so
/// writers taking turns one transaction each are bounded by one disk flush per transaction, however little each
/// one does. Here the writers queued at one moment share one SQLite transaction and one flush:
///
/// - A caller queues its transaction's body. When no batch is running, the caller becomes the leader; otherwise it
///   waits, and at the end of each batch the first caller still waiting is made the next leader (so no extra task
///   runs batches; the leader's own task does).
/// - The leader takes every queued body (at most ``maximumBatch``), runs `BEGIN IMMEDIATE`, then each body inside
///   a savepoint of its own: a body that throws is rolled back to its savepoint, and only its own caller gets the
///   error (its writes are gone, the others' stay). Then one `COMMIT`.
/// - Every caller is answered only after the `COMMIT` succeeded: nobody sees an answer for writes that are not yet
///   durable. If the batch itself fails after it began (a savepoint statement, the `COMMIT`), the whole transaction
///   is rolled back and every body that had not failed on its own runs again, alone in a transaction of its own, so
///   no body's failure ever becomes another's (bodies may run more than once, as a retried transaction's do:
///   ``Database/transaction(_:)``). If `BEGIN` fails, every caller gets that error, as each would have alone.
/// - A batch of one is a plain transaction (`BEGIN IMMEDIATE`, the body, `COMMIT`), without savepoints.
///
/// Each caller's body runs as if it were the only transaction: all or nothing, in a serial order (the batch's),
/// seeing the writes of the bodies before it, its outcome told only to itself. A caller that waits longer than its
/// `wait` before its batch starts gets ``StorageError/poolTimeout`` and its body never runs; once started, it waits
/// for its batch to end.
final class WriteBatcher: Sendable {
    /// The most bodies one batch runs: enough to absorb a burst of concurrent writers, few enough that the first
    /// one's answer is not held back long by the last.
    static let maximumBatch = 128

    typealias Work = @Sendable (any SQLDatabase) async throws -> any Sendable
    typealias Outcome = Result<any Sendable, any Error>

    /// One caller's transaction body and where its answer goes. Its mutable fields are guarded by the batcher's
    /// lock, except `outcome`, which only the leader that took the job writes, before it resumes the caller, and
    /// `work`, which the caller drops once answered (nothing runs it after that).
    final class Job: @unchecked Sendable {
        enum Phase { case queued, leading, taken }
        var work: Work?
        var phase = Phase.queued
        var continuation: CheckedContinuation<Signal, Never>?
        var outcome: Outcome?

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
    /// durable (or has failed). `execute` runs one batch, should this caller lead one: it sets each job's `outcome`.
    func run<R: Sendable>(
        wait: Duration, execute: ([Job], Duration) async -> Void, _ body: (any SQLDatabase) async throws -> R
    ) async throws -> R {
        // The body runs on the leader's task while this one waits for its answer, and never after it: a job leaves
        // the queue either taken (then this caller waits for the end of its batch) or expired before it started.
        try await withoutActuallyEscaping(body) { escaping in
            let unchecked = UncheckedBody(body: escaping)
            let job = Job(work: { sql in try await unchecked.body(sql) })
            var signal = await submit(job, wait: wait)
            while true {
                switch signal {
                case .finished(let outcome):
                    // The body must not outlive this call: the job (kept by a pending timer or a finished batch's
                    // list) lets go of it now.
                    job.work = nil
                    // Only this call's job carries this outcome, made by its own body: always an `R`.
                    return try outcome.get() as! R
                case .lead:
                    signal = .finished(await lead(job, wait: wait, execute: execute))
                }
            }
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
                // Fails the job if no batch has taken it by then; a no-op once one has.
                MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(Int64(wait.wholeNanoseconds))) { [weak job] in
                    if let job { self.expire(job, waited: wait) }
                }
            }
        }
    }

    private func expire(_ job: Job, waited: Duration) {
        let continuation = state.withLock { state -> CheckedContinuation<Signal, Never>? in
            guard job.phase == .queued, let index = state.queue.firstIndex(where: { $0 === job }) else { return nil }
            state.queue.remove(at: index)
            return job.continuation
        }
        continuation?.resume(returning: .finished(.failure(StorageError.poolTimeout(waitedMilliseconds: Int(waited.wholeMilliseconds)))))
    }

    /// Runs one batch holding `own` (first in the queue), answers every other caller in it, hands the lead to the
    /// first caller still waiting, and answers `own`'s outcome.
    private func lead(_ own: Job, wait: Duration, execute: ([Job], Duration) async -> Void) async -> Outcome {
        let jobs = state.withLock { state -> [Job] in
            let taken = Array(state.queue.prefix(Self.maximumBatch))
            state.queue.removeFirst(taken.count)
            for job in taken { job.phase = .taken }
            return taken
        }
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
        for job in jobs.dropFirst() {
            job.continuation?.resume(returning: .finished(job.outcome ?? .failure(StorageError.unavailable("the write batch ended without an answer"))))
        }
        next?.continuation?.resume(returning: .lead)
        return own.outcome ?? .failure(StorageError.unavailable("the write batch ended without an answer"))
    }
}

extension WriteBatcher {
    /// One batch on `sql` (a connection the caller holds): `BEGIN IMMEDIATE`, each job in its own savepoint, one
    /// `COMMIT`; sets every job's outcome (see the type's rules). If the batch as a whole fails after it began (a
    /// savepoint statement, the `COMMIT`: a constraint checked only at commit, a disk error), it is rolled back and
    /// every job whose body had not failed on its own runs again alone, in a transaction of its own, so one body
    /// can never make another's fail. Marks `lease` broken when the connection's transaction state is unknown.
    static func runBatch(_ jobs: [Job], on sql: any SQLDatabase, lease: ConnectionLease) async {
        if jobs.count == 1 {
            await runAlone(jobs[0], on: sql, lease: lease)
            return
        }
        do {
            try await sql.raw("BEGIN IMMEDIATE").run()
        } catch {
            for job in jobs { job.outcome = .failure(error) }
            return
        }
        var batchFailure: (any Error)?
        var succeeded: [(Job, any Sendable)] = []
        /// Jobs whose own body did not fail but which the batch could not finish.
        var again: [Job] = []
        for job in jobs {
            if batchFailure != nil {
                again.append(job)
                continue
            }
            do {
                try await sql.raw("SAVEPOINT ballast_write").run()
            } catch {
                batchFailure = error
                again.append(job)
                continue
            }
            let value: any Sendable
            do {
                guard let work = job.work else { throw StorageError.unavailable("a write was answered before it ran") }
                value = try await work(sql)
            } catch {
                job.outcome = .failure(error)
                do {
                    try await sql.raw("ROLLBACK TO ballast_write").run()
                    try await sql.raw("RELEASE ballast_write").run()
                } catch {
                    batchFailure = error
                }
                continue
            }
            do {
                try await sql.raw("RELEASE ballast_write").run()
                succeeded.append((job, value))
            } catch {
                batchFailure = error
                again.append(job)
            }
        }
        if batchFailure == nil {
            do {
                try await sql.raw("COMMIT").run()
            } catch {
                batchFailure = error
            }
        }
        guard let batchFailure else {
            for (job, value) in succeeded { job.outcome = .success(value) }
            return
        }
        again = succeeded.map(\.0) + again
        do {
            try await sql.raw("ROLLBACK").run()
        } catch {
            // A connection whose transaction state is unknown must never serve another caller, nor this batch again.
            lease.markBroken()
            for job in again { job.outcome = .failure(batchFailure) }
            return
        }
        for job in again {
            await runAlone(job, on: sql, lease: lease)
        }
    }

    /// `job` in a transaction of its own: `BEGIN IMMEDIATE`, its body, `COMMIT` (or `ROLLBACK` when it throws).
    private static func runAlone(_ job: Job, on sql: any SQLDatabase, lease: ConnectionLease) async {
        guard !lease.isBroken else {
            job.outcome = .failure(StorageError.unavailable("the connection's transaction state is unknown"))
            return
        }
        do {
            guard let work = job.work else { throw StorageError.unavailable("a write was answered before it ran") }
            job.outcome = .success(try await Database.runOnce(sql, lease: lease, begin: "BEGIN IMMEDIATE", body: work))
        } catch {
            job.outcome = .failure(error)
        }
    }
}
