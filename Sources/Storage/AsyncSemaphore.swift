import Synchronization

/// A counting semaphore for async code with a bounded wait: `acquire(timeout:)` either gets a permit or throws
/// ``StorageError/poolTimeout`` after `timeout`, and a cancelled waiter leaves the queue at once.
/// Waiters are served first come, first served. One sweeper task (running only while someone waits) fails the
/// waiters whose time is up, instead of a timer task per waiter: under load, most requests wait a little.
final class AsyncSemaphore: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
        let deadline: ContinuousClock.Instant
        let timeout: Duration
    }

    /// The longest the sweeper sleeps before looking again (bounds how late a waiter with an earlier deadline than
    /// the first in line can be failed).
    static let sweepInterval: Duration = .seconds(1)

    private struct State {
        var permits: Int
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
        /// Ids handed out whose waiter is not queued yet; a timeout or cancel that lands in that gap is kept in
        /// `failedEarly` so the waiter fails as soon as it would queue.
        var pending: Set<UInt64> = []
        var failedEarly: [UInt64: any Error] = [:]
        var sweeping = false
    }

    private let state: Mutex<State>

    init(permits: Int) {
        precondition(permits > 0, "a semaphore needs at least one permit")
        state = Mutex(State(permits: permits))
    }

    func acquire(timeout: Duration) async throws {
        let id: UInt64? = state.withLock { state in
            if state.permits > 0 {
                state.permits -= 1
                return nil
            }
            state.nextID += 1
            state.pending.insert(state.nextID)
            return state.nextID
        }
        guard let id else { return }

        let deadline = ContinuousClock.now.advanced(by: timeout)
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Queueing = state.withLock { state in
                    state.pending.remove(id)
                    if let error = state.failedEarly.removeValue(forKey: id) { return .failed(error) }
                    // A permit may have been released between the first check and here.
                    if state.permits > 0 {
                        state.permits -= 1
                        return .served
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation, deadline: deadline, timeout: timeout))
                    defer { state.sweeping = true }
                    return .queued(startSweeper: !state.sweeping)
                }
                switch outcome {
                case .served: continuation.resume()
                case .queued(let startSweeper): if startSweeper { sweep() }
                case .failed(let error): continuation.resume(throwing: error)
                }
            }
        } onCancel: {
            self.fail(id, with: CancellationError())
        }
    }

    func release() {
        let waiter: Waiter? = state.withLock { state in
            if state.waiters.isEmpty {
                state.permits += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.continuation.resume()
    }

    /// What queueing a waiter came to.
    private enum Queueing {
        case served
        case queued(startSweeper: Bool)
        case failed(any Error)
    }

    /// Runs while anyone waits: sleeps until the first waiter's deadline (at most ``sweepInterval``), fails every
    /// waiter whose time is up with ``StorageError/poolTimeout``, and ends when nobody waits.
    private func sweep() {
        Task { [weak self] in
            while let self {
                let next: ContinuousClock.Instant? = self.state.withLock { state in
                    guard let first = state.waiters.map(\.deadline).min() else {
                        state.sweeping = false
                        return nil
                    }
                    return first
                }
                guard let next else { return }
                let wake = min(next, ContinuousClock.now.advanced(by: Self.sweepInterval))
                try? await Task.sleep(until: wake, clock: .continuous)
                let now = ContinuousClock.now
                let expired: [Waiter] = self.state.withLock { state in
                    let late = state.waiters.filter { $0.deadline <= now }
                    state.waiters.removeAll { $0.deadline <= now }
                    return late
                }
                for waiter in expired {
                    let milliseconds = waiter.timeout.components.seconds * 1000
                        + waiter.timeout.components.attoseconds / 1_000_000_000_000_000
                    waiter.continuation.resume(throwing: StorageError.poolTimeout(waitedMilliseconds: Int(milliseconds)))
                }
            }
        }
    }

    /// Removes a still-waiting waiter and fails it; a waiter already served is left alone.
    private func fail(_ id: UInt64, with error: any Error) {
        let waiter: Waiter? = state.withLock { state in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else {
                if state.pending.contains(id) { state.failedEarly[id] = error }
                return nil
            }
            return state.waiters.remove(at: index)
        }
        waiter?.continuation.resume(throwing: error)
    }
}
