import BallastConfig
import Synchronization

/// Named places inside primary transactions that a test can make fail, to prove the transaction rolls back
/// (e.g. `wallet.debit.after_balance_update`), or hold, to line up a race deterministically (the first request
/// paused after writing its idempotency key, the second one arriving). Only tests and APP_ENV=test may arm them;
/// elsewhere `hit` and `pass` are a single atomic load.
public final class Failpoints: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Fail the next hit, then disarm.
        case once
        /// Fail every hit until disarmed.
        case always
        /// Hold the next caller of ``pass(_:)`` there until ``release(_:)``, then disarm.
        case pause
    }

    /// What an armed failpoint throws.
    public struct Triggered: Error, Sendable, Equatable, CustomStringConvertible {
        public let name: String
        public init(name: String) { self.name = name }
        public var description: String { "failpoint \(name) triggered" }
    }

    /// Arming outside tests is a programmer error reported to the caller.
    public struct ArmingForbidden: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String { "failpoints can be armed only with APP_ENV=test" }
    }

    private struct State {
        var armed: [String: Mode] = [:]
        /// Callers held at a paused failpoint, and releases that came before their caller did.
        var held: [String: CheckedContinuation<Void, Never>] = [:]
        var releasedEarly: Set<String> = []
    }

    public let armingAllowed: Bool
    private let armedCount = Atomic<Int>(0)
    private let state = Mutex(State())

    public init(environment: AppEnvironment) {
        self.armingAllowed = environment == .test
    }

    public func arm(_ name: String, _ mode: Mode = .once) throws {
        guard armingAllowed else { throw ArmingForbidden() }
        state.withLock { state in
            if state.armed.updateValue(mode, forKey: name) == nil { armedCount.wrappingAdd(1, ordering: .releasing) }
        }
    }

    public func disarm(_ name: String) {
        state.withLock { state in
            if state.armed.removeValue(forKey: name) != nil { armedCount.wrappingSubtract(1, ordering: .releasing) }
        }
    }

    /// Whether `name` is armed now (in any mode): for a path that has a faster way without the failpoint's place
    /// (one statement that commits by itself has no "after" to fail at) and must take the slower one while a test
    /// aims at it.
    public func isArmed(_ name: String) -> Bool {
        guard armedCount.load(ordering: .acquiring) > 0 else { return false }
        return state.withLock { $0.armed[name] != nil }
    }

    /// Call at the failpoint: throws ``Triggered`` when `name` is armed to fail (a paused one does not stop here;
    /// use ``pass(_:)`` where a test may hold the caller).
    @inline(__always)
    public func hit(_ name: String) throws {
        guard armedCount.load(ordering: .acquiring) > 0 else { return }
        let fire: Bool = state.withLock { state in
            switch state.armed[name] {
            case .none, .pause?: return false
            case .always?: return true
            case .once?:
                state.armed.removeValue(forKey: name)
                armedCount.wrappingSubtract(1, ordering: .releasing)
                return true
            }
        }
        if fire { throw Triggered(name: name) }
    }

    /// Call at a failpoint a test may pause: throws like ``hit(_:)``, or, armed with `.pause`, waits here until the
    /// test calls ``release(_:)``.
    public func pass(_ name: String) async throws {
        guard armedCount.load(ordering: .acquiring) > 0 else { return }
        try hit(name)
        let pause: Bool = state.withLock { state in
            guard state.armed[name] == .pause else { return false }
            state.armed.removeValue(forKey: name)
            armedCount.wrappingSubtract(1, ordering: .releasing)
            return true
        }
        guard pause else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let goOn = state.withLock { state -> Bool in
                if state.releasedEarly.remove(name) != nil { return true }
                state.held[name] = continuation
                return false
            }
            if goOn { continuation.resume() }
        }
    }

    /// Whether a caller is held at `name` now.
    public func isHeld(_ name: String) -> Bool { state.withLock { $0.held[name] != nil } }

    /// Waits (at most `timeout`) until a caller is held at `name`; false if none came.
    public func waitUntilHeld(_ name: String, timeout: Duration = .seconds(30)) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if isHeld(name) { return true }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return isHeld(name)
    }

    /// Lets the caller held at `name` go on (or the next one to arrive, if none is held yet).
    public func release(_ name: String) {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let held = state.held.removeValue(forKey: name) else {
                state.releasedEarly.insert(name)
                return nil
            }
            return held
        }
        continuation?.resume()
    }
}
