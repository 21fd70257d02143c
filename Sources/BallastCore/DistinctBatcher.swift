import Synchronization

/// Gathers concurrent requests into batches run by one call each, with no two requests of one key in a batch.
///
/// At most `runners` batches run at once. A caller that finds a runner free runs a batch at once: its own request
/// first, then the queued requests in arrival order, up to `maximumBatch`. Otherwise it waits in the queue. A
/// runner that finishes answers its batch, then hands its place to the first request still queued (that request's
/// caller runs the next batch) or, when none is, frees it. Nothing waits on a timer: under light load every batch
/// is one request, run at once; under load a batch holds what arrived while the earlier batches ran.
///
/// Requests of one key never share a batch, so a batch can be one set-based statement (each key's row updated once
/// in it). A request whose key is already queued or in a running batch does not wait for a later batch: it runs
/// at once, alone (`alone`), beside the batches, so a hot key's requests are not serialized behind the batcher
/// (what each needs, the key's row, they would wait for anyway; batching gains only across keys). So the queue and
/// the running batches hold at most one request per key, and any run of the queue is a batch of distinct keys.
public final class DistinctBatcher<Key: Hashable & Sendable, Request: Sendable, Answer: Sendable>: Sendable {
    /// Runs one batch; answers one result per request, in the batch's order.
    public typealias Run = @Sendable ([Request]) async -> [Result<Answer, any Error>]
    /// Runs one request by itself.
    public typealias Alone = @Sendable (Request) async -> Result<Answer, any Error>

    private enum Wake {
        /// Run a batch, this request first.
        case lead
        /// Answered in another's batch.
        case answered(Result<Answer, any Error>)
        /// Its key is queued or running already: run alone.
        case alone
    }

    private struct Waiting {
        let key: Key
        let request: Request
        let continuation: CheckedContinuation<Wake, Never>
    }

    private struct State {
        /// Requests waiting for a runner, in arrival order.
        var queue: [Waiting] = []
        var running = 0
        /// The keys of the requests queued or in a running batch.
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

    /// `request`'s answer, from the batch it ran in, or from running alone.
    public func submit(_ request: Request, key: Key) async -> Result<Answer, any Error> {
        let wake = await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
            let now = state.withLock { state -> Wake? in
                guard state.keys.insert(key).inserted else { return .alone }
                if state.running < runners {
                    state.running += 1
                    return .lead
                }
                state.queue.append(Waiting(key: key, request: request, continuation: continuation))
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
        switch wake {
        case .alone:
            return await alone(request)
        case .answered(let result):
            return result
        case .lead:
            return await lead(request, key: key)
        }
    }

    /// Runs the batch this caller leads (its own request first, then the queue's first ones), answers the others in
    /// it, and hands on the runner's place.
    private func lead(_ request: Request, key: Key) async -> Result<Answer, any Error> {
        let others = state.withLock { state -> [Waiting] in
            let count = min(maximumBatch - 1, state.queue.count)
            defer { state.queue.removeFirst(count) }
            return Array(state.queue.prefix(count))
        }
        // A batch of others' requests runs in a task of its own: the leader's caller going away (its task
        // cancelled) must not cancel the others' work.
        let requests = [request] + others.map(\.request)
        var results = others.isEmpty ? await run(requests) : await Task { [run] in await run(requests) }.value
        if results.count != requests.count {
            results = Array(repeating: .failure(BatchMismatch()), count: requests.count)
        }
        let next = state.withLock { state -> Waiting? in
            state.keys.remove(key)
            for waiting in others { state.keys.remove(waiting.key) }
            guard !state.queue.isEmpty else {
                state.running -= 1
                return nil
            }
            return state.queue.removeFirst()
        }
        for (waiting, result) in zip(others, results.dropFirst()) {
            waiting.continuation.resume(returning: .answered(result))
        }
        next?.continuation.resume(returning: .lead)
        return results[0]
    }

    /// A batch's run answered a different number of results than it had requests (a defect): every request of it
    /// fails with this.
    public struct BatchMismatch: Error, CustomStringConvertible {
        public var description: String { "a batch answered a different number of results than it had requests" }
    }
}
