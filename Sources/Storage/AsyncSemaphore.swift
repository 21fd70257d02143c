import Synchronization

/// A counting semaphore for async code with a bounded wait: `acquire(timeout:)` either gets a permit or throws
/// ``StorageError/poolTimeout`` after `timeout`, and a cancelled waiter leaves the queue at once.
/// Waiters are served first come, first served.
final class AsyncSemaphore: Sendable {
    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var permits: Int
        var waiters: [Waiter] = []
        var nextID: UInt64 = 0
        /// Ids handed out whose waiter is not queued yet; a timeout or cancel that lands in that gap is kept in
        /// `failedEarly` so the waiter fails as soon as it would queue.
        var pending: Set<UInt64> = []
        var failedEarly: [UInt64: any Error] = [:]
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

        let timer = Task { [weak self] in
            try await Task.sleep(for: timeout)
            let milliseconds = timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000
            self?.fail(id, with: StorageError.poolTimeout(waitedMilliseconds: Int(milliseconds)))
        }
        defer { timer.cancel() }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Bool, any Error> = state.withLock { state in
                    state.pending.remove(id)
                    if let error = state.failedEarly.removeValue(forKey: id) { return .failure(error) }
                    // A permit may have been released between the first check and here.
                    if state.permits > 0 {
                        state.permits -= 1
                        return .success(true)
                    }
                    state.waiters.append(Waiter(id: id, continuation: continuation))
                    return .success(false)
                }
                switch outcome {
                case .success(true): continuation.resume()
                case .success(false): break
                case .failure(let error): continuation.resume(throwing: error)
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
