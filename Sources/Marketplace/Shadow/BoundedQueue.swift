import Synchronization

/// A first-in, first-out queue of at most `capacity` elements, for any number of producers and consumers.
/// `tryPush` never waits (a full queue refuses); `pop` waits for an element, or answers `nil` once the queue is
/// closed and empty.
final class BoundedQueue<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var waiters: [CheckedContinuation<Element?, Never>] = []
        var closed = false

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

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        precondition(capacity > 0, "a queue holds at least one element")
        self.capacity = capacity
    }

    var count: Int { state.withLock { $0.count } }

    /// Adds `element`, or answers false when the queue is full or closed.
    func tryPush(_ element: Element) -> Bool {
        let (waiter, accepted): (CheckedContinuation<Element?, Never>?, Bool) = state.withLock { state in
            guard !state.closed else { return (nil, false) }
            if !state.waiters.isEmpty { return (state.waiters.removeFirst(), true) }
            guard state.count < capacity else { return (nil, false) }
            state.items.append(element)
            return (nil, true)
        }
        waiter?.resume(returning: element)
        return accepted
    }

    /// The next element; waits while the queue is empty and open; `nil` once closed and drained.
    func pop() async -> Element? {
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
    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }

    /// Removes and answers everything still queued.
    func removeAll() -> [Element] {
        state.withLock { state in
            defer {
                state.items.removeAll()
                state.head = 0
            }
            return Array(state.items[state.head...])
        }
    }
}
