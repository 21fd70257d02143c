import Atomics
import BallastConfig
import Synchronization

/// Named places inside primary transactions that a test can make fail, to prove the transaction rolls back
/// (e.g. `wallet.debit.after_balance_update`). Only tests and APP_ENV=test may arm them; elsewhere `hit` is a
/// single atomic load.
public final class Failpoints: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Fail the next hit, then disarm.
        case once
        /// Fail every hit until disarmed.
        case always
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

    public let armingAllowed: Bool
    private let armedCount = ManagedAtomic<Int>(0)
    private let armed = Mutex<[String: Mode]>([:])

    public init(environment: AppEnvironment) {
        self.armingAllowed = environment == .test
    }

    public func arm(_ name: String, _ mode: Mode = .once) throws {
        guard armingAllowed else { throw ArmingForbidden() }
        armed.withLock { points in
            if points.updateValue(mode, forKey: name) == nil { armedCount.wrappingIncrement(ordering: .releasing) }
        }
    }

    public func disarm(_ name: String) {
        armed.withLock { points in
            if points.removeValue(forKey: name) != nil { armedCount.wrappingDecrement(ordering: .releasing) }
        }
    }

    /// Call at the failpoint: throws ``Triggered`` when `name` is armed.
    @inline(__always)
    public func hit(_ name: String) throws {
        guard armedCount.load(ordering: .acquiring) > 0 else { return }
        let fire: Bool = armed.withLock { points in
            switch points[name] {
            case .none: return false
            case .always: return true
            case .once:
                points.removeValue(forKey: name)
                armedCount.wrappingDecrement(ordering: .releasing)
                return true
            }
        }
        if fire { throw Triggered(name: name) }
    }
}
