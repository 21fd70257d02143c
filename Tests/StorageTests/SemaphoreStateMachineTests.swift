@testable import Storage
import Testing

/// The pool's semaphore, state by state: no locks, no tasks, no clocks but the instants given to it.
@Suite("Semaphore state machine")
struct SemaphoreStateMachineTests {
    typealias Machine = SemaphoreStateMachine<String>
    let start = ContinuousClock.now

    func at(_ seconds: Int) -> ContinuousClock.Instant { start.advanced(by: .seconds(seconds)) }

    /// Queues `name` the way a caller does: acquire, then enqueue under the id it handed out.
    func queue(_ machine: inout Machine, _ name: String, deadline: Int) -> Machine.EnqueueAction? {
        guard case .wait(let id) = machine.acquire() else { return nil }
        return machine.enqueue(id, waiter: name, deadline: at(deadline))
    }

    @Test func permitsAreGrantedUntilNoneIsLeftThenCallersWait() {
        var machine = Machine(permits: 2, maximumWaiters: 10)
        #expect(machine.acquire() == .granted)
        #expect(machine.acquire() == .granted)
        #expect(machine.permits == 0)
        #expect(machine.acquire() == .wait(id: 1))
        #expect(machine.acquire() == .wait(id: 2))
    }

    @Test func theFirstWaiterStartsTheSweeperAndLaterOnesDoNot() {
        var machine = Machine(permits: 1, maximumWaiters: 10)
        _ = machine.acquire()
        guard case .wait(startSweeper: true)? = queue(&machine, "a", deadline: 5) else { Issue.record("a did not wait"); return }
        guard case .wait(startSweeper: false)? = queue(&machine, "b", deadline: 5) else { Issue.record("b did not wait"); return }
        #expect(machine.waiting == 2)
        #expect(machine.sweeping)
    }

    @Test func aReleaseHandsItsPermitToTheFirstWaiterInOrder() {
        var machine = Machine(permits: 1, maximumWaiters: 10)
        _ = machine.acquire()
        _ = queue(&machine, "a", deadline: 5)
        _ = queue(&machine, "b", deadline: 5)
        guard case .resume("a") = machine.release() else { Issue.record("a was not first"); return }
        guard case .resume("b") = machine.release() else { Issue.record("b was not second"); return }
        guard case .none = machine.release() else { Issue.record("a permit went to nobody"); return }
        #expect(machine.permits == 1)
        #expect(machine.waiting == 0)
    }

    @Test func aPermitFreedBetweenAcquireAndEnqueueIsTakenAtOnce() {
        var machine = Machine(permits: 1, maximumWaiters: 10)
        _ = machine.acquire()
        guard case .wait(let id) = machine.acquire() else { Issue.record("no wait"); return }
        _ = machine.release()
        guard case .resume("late") = machine.enqueue(id, waiter: "late", deadline: at(5)) else {
            Issue.record("the free permit was not taken"); return
        }
        #expect(machine.permits == 0)
        #expect(machine.waiting == 0)
    }

    @Test func theQueueIsBoundedAndTheCallerPastItIsRefusedAtOnce() {
        var machine = Machine(permits: 1, maximumWaiters: 2)
        _ = machine.acquire()
        _ = queue(&machine, "a", deadline: 5)
        _ = queue(&machine, "b", deadline: 5)
        guard case .fail("c", .queueFull)? = queue(&machine, "c", deadline: 5) else { Issue.record("c was queued"); return }
        #expect(machine.waiting == 2)
        // Once one leaves, there is room again.
        _ = machine.release()
        guard case .wait? = queue(&machine, "d", deadline: 5) else { Issue.record("d was refused"); return }
    }

    @Test func aCancelledWaiterLeavesTheQueueAndIsFailed() {
        var machine = Machine(permits: 1, maximumWaiters: 10)
        _ = machine.acquire()
        guard case .wait(let first) = machine.acquire() else { return }
        _ = machine.enqueue(first, waiter: "a", deadline: at(5))
        _ = queue(&machine, "b", deadline: 5)
        guard case .fail("a") = machine.cancel(first) else { Issue.record("a was not failed"); return }
        #expect(machine.waiting == 1)
        guard case .resume("b") = machine.release() else { Issue.record("b did not get the permit"); return }
        // Cancelling one already served changes nothing: its caller holds the permit and releases it.
        guard case .none = machine.cancel(first) else { Issue.record("a served waiter was failed"); return }
    }

    @Test func aCancelThatComesBeforeTheWaiterQueuesFailsItWhenItQueues() {
        var machine = Machine(permits: 1, maximumWaiters: 10)
        _ = machine.acquire()
        guard case .wait(let id) = machine.acquire() else { return }
        guard case .none = machine.cancel(id) else { Issue.record("nothing to fail yet"); return }
        guard case .fail("early", .cancelled) = machine.enqueue(id, waiter: "early", deadline: at(5)) else {
            Issue.record("a cancelled waiter queued"); return
        }
        #expect(machine.waiting == 0)
    }

    @Test func aSweepFailsTheExpiredSleepsUntilTheNextDeadlineAndStopsWhenNobodyWaits() {
        var machine = Machine(permits: 1, maximumWaiters: 10)
        _ = machine.acquire()
        _ = queue(&machine, "soon", deadline: 2)
        _ = queue(&machine, "later", deadline: 4)
        guard case .failAndSleep(let none, let next) = machine.sweep(now: at(1), interval: .seconds(10)) else {
            Issue.record("the sweeper stopped with waiters left"); return
        }
        #expect(none.isEmpty)
        #expect(next == at(2))
        guard case .failAndSleep(let expired, let after) = machine.sweep(now: at(2), interval: .seconds(10)) else { return }
        #expect(expired == ["soon"])
        #expect(after == at(4))
        // Never sleeps past the interval, whatever the deadlines.
        guard case .failAndSleep(_, let capped) = machine.sweep(now: at(3), interval: .milliseconds(100)) else { return }
        #expect(capped == at(3).advanced(by: .milliseconds(100)))
        guard case .failAndStop(let last) = machine.sweep(now: at(4), interval: .seconds(10)) else {
            Issue.record("the sweeper went on with nobody waiting"); return
        }
        #expect(last == ["later"])
        #expect(!machine.sweeping)
        // The next waiter starts a new sweeper.
        guard case .wait(startSweeper: true)? = queue(&machine, "again", deadline: 9) else { Issue.record("no new sweeper"); return }
    }

    @Test func manyWaitersComeAndGoWithoutLosingAPermit() {
        // A long run of mixed events: the permits and the waiters always add up.
        var machine = Machine(permits: 3, maximumWaiters: 1000)
        var holders = 0
        var queued: [UInt64] = []
        for step in 0..<5000 {
            switch step % 7 {
            case 0, 1, 2:
                switch machine.acquire() {
                case .granted: holders += 1
                case .wait(let id):
                    if case .wait = machine.enqueue(id, waiter: "w\(id)", deadline: at(1000)) { queued.append(id) }
                }
            case 3, 4, 5:
                guard holders > 0 else { continue }
                if case .resume = machine.release() { queued.removeFirst() } else { holders -= 1 }
            default:
                guard let id = queued.popLast() else { continue }
                if case .none = machine.cancel(id) { Issue.record("a queued waiter could not be cancelled") }
            }
            #expect(holders + machine.permits == 3)
            #expect(machine.waiting == queued.count)
        }
    }
}
