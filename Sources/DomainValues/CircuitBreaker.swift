import Dispatch
import Metrics
import Synchronization

/// The circuit breaker's rules as an explicit state machine, driven by the caller's clock (nanoseconds of a
/// monotonic clock), so each transition can be tested on its own.
///
/// closed → open after ``consecutiveFailureLimit`` failures in a row, or when at least ``failureRatio`` of the
/// last ``window`` calls failed (once there are that many). open → half-open when ``openNanoseconds`` have
/// passed: one trial call goes through, the others are refused. The trial's success closes the breaker (history
/// forgotten); its failure opens it again for another period.
public struct CircuitBreakerStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        case closed
        case open(untilNanoseconds: UInt64)
        /// One trial call is out; everything else is refused until it reports.
        case halfOpen
    }

    /// What a call may do now.
    public enum Permission: Sendable, Equatable {
        case allowed
        /// The half-open breaker's one trial call.
        case trial
        /// Refused without calling; retry after this many nanoseconds at the earliest.
        case refused(retryAfterNanoseconds: UInt64)
    }

    public let consecutiveFailureLimit: Int
    public let window: Int
    public let failureRatio: Double
    public let openNanoseconds: UInt64

    public private(set) var state: State = .closed
    private var consecutiveFailures = 0
    /// The last `window` outcomes, `true` for a failure.
    private var recent: [Bool] = []

    public init(consecutiveFailureLimit: Int = 5, window: Int = 20, failureRatio: Double = 0.5,
                openNanoseconds: UInt64 = 30_000_000_000) {
        precondition(consecutiveFailureLimit >= 1, "a breaker opens after at least one failure")
        precondition(window >= 1, "the failure window holds at least one call")
        precondition(failureRatio > 0 && failureRatio <= 1, "the failure ratio is a fraction in (0, 1]")
        precondition(openNanoseconds > 0, "an open breaker stays open for some time")
        self.consecutiveFailureLimit = consecutiveFailureLimit
        self.window = window
        self.failureRatio = failureRatio
        self.openNanoseconds = openNanoseconds
    }

    /// Asks whether a call may go out at `now`; moves open → half-open when the open period is over.
    public mutating func permit(now: UInt64) -> Permission {
        switch state {
        case .closed:
            return .allowed
        case .open(let until):
            guard now >= until else { return .refused(retryAfterNanoseconds: until - now) }
            state = .halfOpen
            return .trial
        case .halfOpen:
            return .refused(retryAfterNanoseconds: 1_000_000_000)
        }
    }

    /// Records how a permitted call ended.
    public mutating func record(success: Bool, now: UInt64) {
        defer {
            // What the closed state keeps never reaches what would have opened it.
            if case .closed = state {
                precondition(recent.count <= window, "the failure window holds at most its size")
                precondition(consecutiveFailures < consecutiveFailureLimit, "a closed breaker is under its failure limit")
            } else {
                precondition(recent.isEmpty && consecutiveFailures == 0, "an open or half-open breaker keeps no history")
            }
        }
        switch state {
        case .halfOpen:
            if success {
                state = .closed
                consecutiveFailures = 0
                recent.removeAll()
            } else {
                state = .open(untilNanoseconds: reopen(now))
            }
        case .closed:
            consecutiveFailures = success ? 0 : consecutiveFailures + 1
            recent.append(!success)
            if recent.count > window { recent.removeFirst(recent.count - window) }
            let failures = recent.filter { $0 }.count
            if consecutiveFailures >= consecutiveFailureLimit
                || (recent.count == window && Double(failures) >= failureRatio * Double(window)) {
                state = .open(untilNanoseconds: reopen(now))
                consecutiveFailures = 0
                recent.removeAll()
            }
        case .open:
            // A call permitted before the breaker opened, reporting late: the open period stands.
            break
        }
    }

    /// When an open period starting `now` ends (the far future rather than a wrapped-around past).
    private func reopen(_ now: UInt64) -> UInt64 {
        let (until, overflow) = now.addingReportingOverflow(openNanoseconds)
        return overflow ? .max : until
    }
}

/// A circuit breaker around one dependency: the state machine behind a lock, with its state published as
/// `circuit_breaker_state{dependency}` (0 closed, 1 open, 2 half-open).
public final class CircuitBreaker: Sendable {
    public let dependency: String
    private let machine: Mutex<CircuitBreakerStateMachine>
    private let metrics: any MetricsFactory

    public init(dependency: String, machine: CircuitBreakerStateMachine = .init(), metrics: any MetricsFactory) {
        self.dependency = dependency
        self.machine = Mutex(machine)
        self.metrics = metrics
        publish(machine.state)
    }

    public var state: CircuitBreakerStateMachine.State { machine.withLock { $0.state } }

    public func permit() -> CircuitBreakerStateMachine.Permission {
        let (permission, state) = machine.withLock { machine in (machine.permit(now: Self.now()), machine.state) }
        publish(state)
        return permission
    }

    public func record(success: Bool) {
        let state = machine.withLock { machine in
            machine.record(success: success, now: Self.now())
            return machine.state
        }
        publish(state)
    }

    private func publish(_ state: CircuitBreakerStateMachine.State) {
        let value: Double
        switch state {
        case .closed: value = 0
        case .open: value = 1
        case .halfOpen: value = 2
        }
        Gauge(label: "circuit_breaker_state", dimensions: [("dependency", dependency)], factory: metrics).record(value)
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }
}
