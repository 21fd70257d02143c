import Synchronization

/// Gathers concurrent requests into batches run by one call each, with no two requests of one key in a batch.
///
/// At most `runners` batches run at once. A caller that finds a runner free runs a batch at once: its own request
/// first, then the queued requests in arrival order whose keys differ from every key already taken, up to
/// `maximumBatch`. Otherwise it waits in the queue. A runner that finishes answers its batch, then hands its place to
/// the first request still queued (that request's caller runs the next batch) or, when none is, frees it. Nothing
/// waits on a timer: under light load every batch is one request, run at once; under load a batch holds what
/// arrived while the earlier batches ran.
///
/// Requests of one key never share a batch, so a batch can be one set-based statement (each key's row updated once
/// in it). A request whose key is already queued or in a running batch does not wait for a later batch: it runs
/// at once, alone (`alone`), beside the batches, so a hot key's requests are not serialized behind the batcher
/// (what each needs, the key's row, they would wait for anyway; batching gains only across keys).
public final class DistinctBatcher<Key: Hashable & Sendable, Request: Sendable, Answer: Sendable>: Sendable {
    /// Runs one batch; answers one result per request, in the batch's order.
    public typealias Run = @Sendable ([Request]) async -> [Result<Answer, any Error>]
    /// Runs one request by itself.
    public typealias Alone = @Sendable (Request) async -> Result<Answer, any Error>

    private enum Wake {
        case lead
        case answered(Result<Answer, any Error>)
    }

    private struct Queued {
        let id: UInt64
        let key: Key
        let request: Request
        /// `nil` once the caller was told to lead (or never waited).
        var continuation: CheckedContinuation<Wake, Never>?
    }

    private struct State {
        var queue: [Queued] = []
        var running = 0
        var nextId: UInt64 = 0
        /// The keys of the requests queued or in a running batch (one request each).
        var keys: Set<Key> = []
    }

    private let state = Mutex(State())
    private let runners: Int
    private let maximumBatch: Int
    private let run: Run
    private let alone: Alone

    public init(runners: Int, maximumBatch: Int, run: @escaping Run, alone: @escaping Alone) {
        precondition(runners > 0 && maximumBatch > 0, "a batcher needs a runner and room for a request")
        self.runners = runners
        self.maximumBatch = maximumBatch
        self.run = run
        self.alone = alone
    }

    /// `request`'s answer, from the batch it ran in.
    public func submit(_ request: Request, key: Key) async -> Result<Answer, any Error> {
        let id = state.withLock { state -> UInt64? in
            guard state.keys.insert(key).inserted else { return nil }
            state.nextId &+= 1
            return state.nextId
        }
        guard let id else { return await alone(request) }
        let wake = await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            let leadsNow = state.withLock { state -> Bool in
                if state.running < runners {
                    state.running += 1
                    state.queue.append(Queued(id: id, key: key, request: request, continuation: nil))
                    return true
                }
                state.queue.append(Queued(id: id, key: key, request: request, continuation: continuation))
                return false
            }
            if leadsNow { continuation.resume(returning: .lead) }
        }
        switch wake {
        case .answered(let result):
            return result
        case .lead:
            return await lead(own: id)
        }
    }

    /// Runs the batch this caller leads (its own request, entry `own`, first), answers the others in it, and hands
    /// on the runner's place. Only entries still waiting (with a continuation) join a batch: an entry without one
    /// belongs to a caller told to lead, who takes it itself.
    private func lead(own: UInt64) async -> Result<Answer, any Error> {
        let batch = state.withLock { state -> [Queued] in
            guard let mine = state.queue.firstIndex(where: { $0.id == own }) else { return [] }
            var batch = [state.queue.remove(at: mine)]
            var keys: Set<Key> = [batch[0].key]
            var index = 0
            while batch.count < maximumBatch, index < state.queue.count {
                let queued = state.queue[index]
                if queued.continuation != nil, keys.insert(queued.key).inserted {
                    batch.append(state.queue.remove(at: index))
                } else {
                    index += 1
                }
            }
            return batch
        }
        precondition(!batch.isEmpty, "a leader's own request is queued")
        // A batch of others' requests runs in a task of its own: the leader's caller going away (its task
        // cancelled) must not cancel the others' work.
        let requests = batch.map(\.request)
        var results = batch.count == 1 ? await run(requests) : await Task { [run] in await run(requests) }.value
        if results.count != batch.count {
            results = Array(repeating: .failure(BatchMismatch()), count: batch.count)
        }
        let next = state.withLock { state -> CheckedContinuation<Wake, Never>? in
            for queued in batch { state.keys.remove(queued.key) }
            guard let first = state.queue.firstIndex(where: { $0.continuation != nil }) else {
                state.running -= 1
                return nil
            }
            defer { state.queue[first].continuation = nil }
            return state.queue[first].continuation
        }
        for (queued, result) in zip(batch.dropFirst(), results.dropFirst()) {
            queued.continuation?.resume(returning: .answered(result))
        }
        next?.resume(returning: .lead)
        return results[0]
    }

    /// A batch's run answered a different number of results than it had requests (a defect): every request of it
    /// fails with this.
    public struct BatchMismatch: Error, CustomStringConvertible {
        public var description: String { "a batch answered a different number of results than it had requests" }
    }
}
