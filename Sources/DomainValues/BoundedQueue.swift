import Synchronization

/// A first-in, first-out queue of at most `capacity` elements, for any number of producers and consumers.
/// `tryPush` never waits (a full queue refuses); `pop` waits for an element, or answers `nil` once the queue is
/// closed and empty. A consumer calls `finished()` once it has dealt with an element it popped, so
/// `waitUntilIdle(timeout:)` can tell when everything pushed has been dealt with: a signalled wait, not a poll.
public final class BoundedQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var waiters: [CheckedContinuation<Element?, Never>] = []
        var closed = false
        /// Pushed and not yet finished (queued, or popped and still being dealt with).
        var unfinished = 0
        /// Callers waiting for `unfinished` to reach 0, and waits cancelled before they registered.
        var idleWaiters: [UInt64: CheckedContinuation<Bool, Never>] = [:]
        var cancelledIdleWaits: Set<UInt64> = []
        /// Waits begun and not yet over (registered or about to be).
        var openIdleWaits: Set<UInt64> = []
        var nextIdleWait: UInt64 = 0

        /// Counts `count` elements as finished; answers the idle waiters to resume when none is left.
        mutating func finish(_ count: Int) -> [CheckedContinuation<Bool, Never>] {
            unfinished -= count
            precondition(unfinished >= 0, "more elements finished than were pushed")
            guard unfinished == 0 else { return [] }
            defer {
                for id in idleWaiters.keys { openIdleWaits.remove(id) }
                idleWaiters.removeAll()
            }
            return Array(idleWaiters.values)
        }

        var count: Int { items.count - head }

        mutating func takeFirst() -> Element? {
            guard head < items.count else { return nil }
            let element = items[head]
            head += 1
            // Compact once the consumed prefix is large, so the array stays bounded.
            if head >= 1024, head * 2 >= items.count {
                items.removeFirst(head)
                head = 0
            }
            return element
        }
    }

    public let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int) {
        precondition(capacity > 0, "a queue holds at least one element")
        self.capacity = capacity
    }

    public var count: Int { state.withLock { $0.count } }

    /// Adds `element`, or answers false when the queue is full or closed.
    public func tryPush(_ element: Element) -> Bool {
        let (waiter, accepted): (CheckedContinuation<Element?, Never>?, Bool) = state.withLock { state in
            guard !state.closed else { return (nil, false) }
            if !state.waiters.isEmpty {
                state.unfinished += 1
                return (state.waiters.removeFirst(), true)
            }
            guard state.count < capacity else { return (nil, false) }
            state.items.append(element)
            state.unfinished += 1
            return (nil, true)
        }
        waiter?.resume(returning: element)
        return accepted
    }

    /// The next element; waits while the queue is empty and open; `nil` once closed and drained.
    public func pop() async -> Element? {
        await withCheckedContinuation { continuation in
            let ready: Element?? = state.withLock { state in
                if let element = state.takeFirst() { return .some(element) }
                if state.closed { return .some(nil) }
                state.waiters.append(continuation)
                return .none
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Stops accepting elements; waiting consumers get `nil` once what is queued is taken.
    public func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// Removes and answers everything still queued (counted as finished: the caller deals with it otherwise).
    public func removeAll() -> [Element] {
        let (removed, idle) = state.withLock { state in
            let removed = Array(state.items[state.head...])
            state.items.removeAll()
            state.head = 0
            return (removed, state.finish(removed.count))
        }
        for waiter in idle { waiter.resume(returning: true) }
        return removed
    }

    /// A consumer has dealt with one element it popped.
    public func finished() {
        for waiter in state.withLock({ $0.finish(1) }) { waiter.resume(returning: true) }
    }

    /// Waits until nothing pushed is unfinished (elements pushed meanwhile count too), at most `timeout`; true when
    /// it came to that.
    public func waitUntilIdle(timeout: Duration) async -> Bool {
        await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.idle() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
    }

    /// Returns true once nothing is unfinished, or false when the task is cancelled first.
    private func idle() async -> Bool {
        let id = state.withLock { state -> UInt64 in
            state.nextIdleWait += 1
            state.openIdleWaits.insert(state.nextIdleWait)
            return state.nextIdleWait
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let answer = state.withLock { state -> Bool? in
                    if state.cancelledIdleWaits.remove(id) != nil {
                        state.openIdleWaits.remove(id)
                        return false
                    }
                    if state.unfinished == 0 {
                        state.openIdleWaits.remove(id)
                        return true
                    }
                    state.idleWaiters[id] = continuation
                    return nil
                }
                if let answer { continuation.resume(returning: answer) }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                if let waiter = state.idleWaiters.removeValue(forKey: id) {
                    state.openIdleWaits.remove(id)
                    return waiter
                }
                // Not registered yet: it fails as it registers. (Already over: nothing to do.)
                if state.openIdleWaits.contains(id) { state.cancelledIdleWaits.insert(id) }
                return nil
            }
            waiter?.resume(returning: false)
        }
    }
}
