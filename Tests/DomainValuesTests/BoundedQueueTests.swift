@testable import DomainValues

import Synchronization
import Testing

/// The work queue under shadow writes and events: bounded, first in first out, and a drain that is told when the
/// last element is finished instead of polling for it.
@Suite("Bounded queue")
struct BoundedQueueTests {
    @Test func aFullQueueRefusesAndOrderIsKept() async {
        let queue = BoundedQueue<Int>(capacity: 2)
        #expect(queue.tryPush(1))
        #expect(queue.tryPush(2))
        #expect(!queue.tryPush(3))
        #expect(await queue.pop() == 1)
        #expect(await queue.pop() == 2)
        queue.close()
        #expect(await queue.pop() == nil)
        #expect(!queue.tryPush(4))
    }

    @Test func anEmptyQueueIsIdleAtOnce() async {
        let queue = BoundedQueue<Int>(capacity: 4)
        #expect(await queue.waitUntilIdle(timeout: .seconds(5)))
    }

    /// Popped is not finished: the wait ends only when the consumer says it has dealt with the element.
    @Test func idleMeansFinishedNotMerelyPopped() async throws {
        let queue = BoundedQueue<Int>(capacity: 4)
        #expect(queue.tryPush(1))
        #expect(await queue.pop() == 1)
        #expect(queue.count == 0)
        #expect(await !queue.waitUntilIdle(timeout: .milliseconds(200)), "idle while an element is still being dealt with")
        let waiting = Task { await queue.waitUntilIdle(timeout: .seconds(30)) }
        try await Task.sleep(for: .milliseconds(50))
        queue.finished()
        #expect(await waiting.value)
    }

    /// Hundreds of elements through four consumers: the drain returns once, after the last one is finished, and
    /// never before.
    @Test func aDrainReturnsAfterTheLastOfManyIsFinished() async {
        let queue = BoundedQueue<Int>(capacity: 1000)
        let done = Tally()
        for value in 0..<500 { #expect(queue.tryPush(value)) }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while let _ = await queue.pop() {
                        await Task.yield()
                        done.value.wrappingAdd(1, ordering: .relaxed)
                        queue.finished()
                    }
                }
            }
            #expect(await queue.waitUntilIdle(timeout: .seconds(60)))
            #expect(done.value.load(ordering: .relaxed) == 500)
            queue.close()
        }
    }

    /// What is removed unprocessed counts as finished (the caller hands it elsewhere), so a drain does not wait for it.
    @Test func removedElementsCountAsFinished() async {
        let queue = BoundedQueue<Int>(capacity: 8)
        for value in 0..<5 { #expect(queue.tryPush(value)) }
        let waiting = Task { await queue.waitUntilIdle(timeout: .seconds(30)) }
        #expect(queue.removeAll() == [0, 1, 2, 3, 4])
        #expect(await waiting.value)
    }

    @Test func aCancelledDrainEndsAtOnce() async {
        let queue = BoundedQueue<Int>(capacity: 8)
        #expect(queue.tryPush(1))
        let waiting = Task { await queue.waitUntilIdle(timeout: .seconds(60)) }
        waiting.cancel()
        #expect(await !waiting.value)
    }
}

private final class Tally: Sendable {
    let value = Atomic<Int>(0)
}
