import BallastCore
import Synchronization

/// The rules of ``AsyncSemaphore`` as a pure state machine: each event (an acquire, a waiter queueing, a release, a
/// cancel, a sweep of expired waiters) changes the state and returns what must be done. Nothing here locks, sleeps
/// or resumes anything; the semaphore does that outside its lock, with the actions this returns. `Waiter` is what a
/// queued caller is resumed through (a continuation; anything in tests).
///
/// Invariants (checked by preconditions): permits are never negative, and while anyone waits no permit is free
/// (a release hands its permit straight to the first waiter). The waiter queue is bounded: a caller that would be
/// waiter number `maximumWaiters + 1` is refused at once instead of queueing without limit.
struct SemaphoreStateMachine<Waiter> {
    struct Queued {
        let id: UInt64
        let waiter: Waiter
        let deadline: ContinuousClock.Instant
    }

    /// Why a waiter is failed.
    enum Failure: Equatable, Sendable {
        case cancelled
        case queueFull
        case timedOut
    }

    enum AcquireAction: Equatable {
        /// A permit was free and is now the caller's.
        case granted
        /// None was free: the caller queues under this id (``enqueue(_:waiter:deadline:)``).
        case wait(id: UInt64)
    }

    enum EnqueueAction {
        /// A permit came free between the acquire and the queueing: resume the waiter at once, it holds the permit.
        case resume(Waiter)
        /// Fail the waiter at once (it was cancelled before it queued, or the queue is full).
        case fail(Waiter, Failure)
        /// The waiter waits; start the sweeper when asked (it runs only while someone waits).
        case wait(startSweeper: Bool)
    }

    enum ReleaseAction {
        /// The permit went back to the pool.
        case none
        /// The permit passes to this waiter: resume it.
        case resume(Waiter)
    }

    enum CancelAction {
        case none
        case fail(Waiter)
    }

    enum SweepAction {
        /// Fail these waiters (their time is up); nobody else waits, so the sweeper ends.
        case failAndStop(expired: [Waiter])
        /// Fail these waiters (their time is up), then sleep until `next` and sweep again.
        case failAndSleep(expired: [Waiter], next: ContinuousClock.Instant)
    }

    let maximumWaiters: Int
    private(set) var permits: Int
    /// First come, first served; `head` is the first that still waits (served ones are dropped in batches).
    private var queue: [Queued?] = []
    private var head = 0
    private(set) var waiting = 0
    private var nextID: UInt64 = 0
    /// Ids handed out by ``acquire()`` whose waiter has not queued yet, and those of them already cancelled.
    private var announced: Set<UInt64> = []
    private var cancelledEarly: Set<UInt64> = []
    private(set) var sweeping = false

    init(permits: Int, maximumWaiters: Int) {
        precondition(permits > 0, "a semaphore needs at least one permit")
        precondition(maximumWaiters > 0, "a semaphore needs room for at least one waiter")
        self.permits = permits
        self.maximumWaiters = maximumWaiters
    }

    mutating func acquire() -> AcquireAction {
        if permits > 0 {
            precondition(waiting == 0, "a permit is free while callers wait")
            permits -= 1
            return .granted
        }
        nextID += 1
        announced.insert(nextID)
        return .wait(id: nextID)
    }

    mutating func enqueue(_ id: UInt64, waiter: Waiter, deadline: ContinuousClock.Instant) -> EnqueueAction {
        precondition(announced.contains(id), "a waiter queues only under an id its acquire handed out")
        announced.remove(id)
        if cancelledEarly.remove(id) != nil { return .fail(waiter, .cancelled) }
        if permits > 0 {
            permits -= 1
            return .resume(waiter)
        }
        guard waiting < maximumWaiters else { return .fail(waiter, .queueFull) }
        queue.append(Queued(id: id, waiter: waiter, deadline: deadline))
        waiting += 1
        let start = !sweeping
        sweeping = true
        return .wait(startSweeper: start)
    }

    mutating func release() -> ReleaseAction {
        guard let first = popFirst() else {
            permits += 1
            return .none
        }
        return .resume(first.waiter)
    }

    /// A caller's task was cancelled: a queued waiter leaves the queue and fails; one not queued yet fails when it
    /// queues; one already served keeps its permit (its caller releases it).
    mutating func cancel(_ id: UInt64) -> CancelAction {
        if let index = queue[head...].firstIndex(where: { $0?.id == id }), let queued = queue[index] {
            queue[index] = nil
            waiting -= 1
            compact()
            return .fail(queued.waiter)
        }
        if announced.contains(id) { cancelledEarly.insert(id) }
        return .none
    }

    /// The waiters whose deadline is at or before `now` leave the queue; the sweeper sleeps until the earliest
    /// deadline left, at most `interval` from now.
    mutating func sweep(now: ContinuousClock.Instant, interval: Duration) -> SweepAction {
        var expired: [Waiter] = []
        var earliest: ContinuousClock.Instant?
        for index in queue.indices[head...] {
            guard let queued = queue[index] else { continue }
            if queued.deadline <= now {
                expired.append(queued.waiter)
                queue[index] = nil
                waiting -= 1
            } else if earliest.map({ queued.deadline < $0 }) ?? true {
                earliest = queued.deadline
            }
        }
        compact()
        guard let earliest else {
            precondition(waiting == 0, "waiters left without a deadline")
            sweeping = false
            return .failAndStop(expired: expired)
        }
        return .failAndSleep(expired: expired, next: min(earliest, now.advanced(by: interval)))
    }

    private mutating func popFirst() -> Queued? {
        while head < queue.count {
            let next = queue[head]
            head += 1
            if let next {
                waiting -= 1
                compact()
                return next
            }
        }
        compact()
        return nil
    }

    /// Drops the served and removed slots at the front once they are most of the array.
    private mutating func compact() {
        while head < queue.count, queue[head] == nil { head += 1 }
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 64, head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
    }
}

/// A counting semaphore for async code with a bounded wait: `acquire(timeout:)` either gets a permit or throws
/// ``StorageError/poolTimeout`` after `timeout` (``StorageError/poolQueueFull`` at once when `maximumWaiters` already
/// wait), and a cancelled waiter leaves the queue at once. Waiters are served first come, first served. One sweeper
/// task (running only while someone waits) fails the waiters whose time is up, instead of a timer task per waiter:
/// under load, most requests wait a little. The rules are ``SemaphoreStateMachine``; this runs its actions.
final class AsyncSemaphore: Sendable {
    /// A queued caller: how to resume it, and how long it was willing to wait (for the error it gets).
    struct Waiter {
        let continuation: CheckedContinuation<Void, any Error>
        let timeout: Duration
    }

    typealias Machine = SemaphoreStateMachine<Waiter>

    /// The longest the sweeper sleeps before looking again.
    static let sweepInterval: Duration = .seconds(1)
    /// How many callers may wait at once by default: beyond that a caller is refused at once (503 upstream) instead
    /// of adding to a queue that cannot drain in time anyway.
    static let defaultMaximumWaiters = 10_000

    private let machine: Mutex<Machine>

    init(permits: Int, maximumWaiters: Int = AsyncSemaphore.defaultMaximumWaiters) {
        machine = Mutex(Machine(permits: permits, maximumWaiters: maximumWaiters))
    }

    func acquire(timeout: Duration) async throws {
        guard case .wait(let id) = machine.withLock({ $0.acquire() }) else { return }
        let deadline = ContinuousClock.now.advanced(by: timeout)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let waiter = Waiter(continuation: continuation, timeout: timeout)
                switch machine.withLock({ $0.enqueue(id, waiter: waiter, deadline: deadline) }) {
                case .resume(let waiter): waiter.continuation.resume()
                case .fail(let waiter, let failure): Self.fail(waiter, failure)
                case .wait(let startSweeper): if startSweeper { sweep() }
                }
            }
        } onCancel: {
            if case .fail(let waiter) = machine.withLock({ $0.cancel(id) }) { Self.fail(waiter, .cancelled) }
        }
    }

    func release() {
        if case .resume(let waiter) = machine.withLock({ $0.release() }) { waiter.continuation.resume() }
    }

    /// Runs while anyone waits: fails every waiter whose time is up, sleeps until the next deadline (at most
    /// ``sweepInterval``), and ends when nobody waits.
    private func sweep() {
        Task { [weak self] in
            while let self {
                switch self.machine.withLock({ $0.sweep(now: .now, interval: Self.sweepInterval) }) {
                case .failAndStop(let expired):
                    for waiter in expired { Self.fail(waiter, .timedOut) }
                    return
                case .failAndSleep(let expired, let next):
                    for waiter in expired { Self.fail(waiter, .timedOut) }
                    try? await Task.sleep(until: next, clock: .continuous)
                }
            }
        }
    }

    private static func fail(_ waiter: Waiter, _ failure: Machine.Failure) {
        let error: any Error
        switch failure {
        case .cancelled: error = CancellationError()
        case .queueFull: error = StorageError.poolQueueFull
        case .timedOut: error = StorageError.poolTimeout(waitedMilliseconds: Int(waiter.timeout.wholeMilliseconds))
        }
        waiter.continuation.resume(throwing: error)
    }
}
