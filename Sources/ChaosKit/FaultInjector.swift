import BallastConfig
import Foundation
import Logging
import Metrics
import Synchronization

/// An injected fault: what a fault point throws when chaos strikes it.
public struct InjectedFault: Error, Sendable, Equatable, CustomStringConvertible {
    public let point: String
    public let ordinal: UInt64

    public init(point: String, ordinal: UInt64) {
        self.point = point
        self.ordinal = ordinal
    }

    public var description: String { "injected fault at \(point) (call \(ordinal))" }
}

/// A fault that was injected, remembered so the discrepancy verifier can tell expected discrepancies from real
/// ones.
public struct InjectedFaultRecord: Sendable, Equatable {
    public let point: String
    public let ordinal: UInt64
    public let entityId: String?
    public let requestId: String?
    public let at: Date
}

/// Decides, records and applies injected faults.
///
/// A check while injection is off takes no lock: one atomic load of the `live` flag. While it is on, it reads the
/// current ``ChaosState`` snapshot (under a lock held for a pointer copy), bumps the point's atomic counter and asks
/// ``FaultDecider``. Only a fault that fires records anything (metric, log line, memory).
public final class FaultInjector: Sendable {
    /// One immutable snapshot, replaced whole on every change.
    final class Snapshot: Sendable {
        let state: ChaosState
        let key: UInt64
        /// Monotonic deadline of the time box, in uptime nanoseconds (cheap to compare on every check).
        let deadlineUptimeNanos: UInt64?

        init(state: ChaosState) {
            self.state = state
            self.key = FaultDecider.key(forSeed: state.seed)
            if let expiresAt = state.expiresAt {
                let remaining = max(0, expiresAt.timeIntervalSinceNow)
                self.deadlineUptimeNanos = DispatchTime.now().uptimeNanoseconds + UInt64(remaining * 1e9)
            } else {
                self.deadlineUptimeNanos = nil
            }
        }
    }

    /// Per-point call counter and name hash, fixed at init so lookups need no lock.
    final class PointCounter: Sendable {
        let point: FaultPoint
        let hash: UInt64
        let calls = Atomic<UInt64>(0)

        init(point: FaultPoint) {
            self.point = point
            self.hash = FaultDecider.pointHash(point.name)
        }
    }

    /// How many injected faults are remembered for the verifier (oldest forgotten first).
    public static let memoryCapacity = 100_000

    public let environment: AppEnvironment
    private let snapshot: Mutex<Snapshot>
    /// Whether the snapshot in force has injection enabled: what a check reads first, without the lock.
    private let live: Atomic<Bool>
    private let counters: [String: PointCounter]
    private let metrics: any MetricsFactory
    private let logger: Logger
    private let memory = Mutex<[InjectedFaultRecord]>([])

    public init(state: ChaosState, environment: AppEnvironment, points: [FaultPoint] = FaultPoint.all,
                metrics: any MetricsFactory, logger: Logger) {
        precondition(!(environment == .production && state.enabled), "chaos is never enabled in production")
        self.environment = environment
        self.snapshot = Mutex(Snapshot(state: state))
        self.live = Atomic(state.enabled)
        self.counters = Dictionary(uniqueKeysWithValues: points.map { ($0.name, PointCounter(point: $0)) })
        self.metrics = metrics
        self.logger = logger
        Self.publish(state, metrics)
    }

    /// The settings in force.
    public var state: ChaosState { current.state }

    private var current: Snapshot { snapshot.withLock { $0 } }

    /// Replaces the settings at once (kill switch, time box, guard). Refuses to enable injection in production
    /// or to use the read scope outside development and test, whatever the caller checked before.
    public func apply(_ state: ChaosState) {
        var safe = state
        if environment == .production { safe.enabled = false }
        if !safe.scope.isAllowed(in: environment) { safe.enabled = false }
        snapshot.withLock { current in
            current = Snapshot(state: safe)
            live.store(safe.enabled, ordering: .releasing)
        }
        Self.publish(safe, metrics)
    }

    /// `chaos_enabled` and the end of its time box, as the settings in force say.
    private static func publish(_ state: ChaosState, _ metrics: any MetricsFactory) {
        Gauge(label: "chaos_enabled", factory: metrics).record(state.enabled ? 1 : 0)
        let end = state.enabled ? state.expiresAt.map(\.timeIntervalSince1970) ?? 0 : 0
        Gauge(label: "chaos_time_box_end_timestamp_seconds", factory: metrics).record(end)
    }

    /// Counts a switch-off by the steady-state guard (`chaos_guard_trips_total`).
    public func recordGuardTrip() {
        Counter(label: "chaos_guard_trips_total", factory: metrics).increment()
    }

    /// Whether the time box has run out while injection is still marked enabled (the monitor then records the
    /// switch-off; checks already stopped firing at the deadline).
    public var isPastTimeBox: Bool {
        let current = self.current
        guard current.state.enabled, let deadline = current.deadlineUptimeNanos else { return false }
        return DispatchTime.now().uptimeNanoseconds >= deadline
    }

    /// The decision for the next call at `point`: `nil` when injection is not live for it (no call counted),
    /// else the call's ordinal and whether it fails.
    @inline(__always)
    public func decide(_ point: FaultPoint) -> (ordinal: UInt64, fires: Bool)? {
        guard live.load(ordering: .acquiring) else { return nil }
        let current = self.current
        let state = current.state
        guard state.enabled, state.scope.includes(point.kind) else { return nil }
        if let deadline = current.deadlineUptimeNanos, DispatchTime.now().uptimeNanoseconds >= deadline { return nil }
        guard let counter = counters[point.name] else {
            preconditionFailure("fault point \(point.name) is not registered with this injector")
        }
        let ordinal = counter.calls.wrappingAdd(1, ordering: .relaxed).newValue
        return (ordinal, FaultDecider.fires(key: current.key, pointHash: counter.hash, ordinal: ordinal, rate: state.failRate))
    }

    /// What an injected fault does to the call that met it.
    public enum Outcome: Sendable, Equatable {
        /// The call fails with this error.
        case fail(InjectedFault)
        /// The call is held this long (CHAOS_LATENCY_MS), then goes ahead.
        case delay(Duration, InjectedFault)

        public var fault: InjectedFault {
            switch self {
            case .fail(let fault), .delay(_, let fault): return fault
            }
        }
    }

    /// Takes the next call's decision at `point` now and, when a fault fires, records it (metric, log line,
    /// memory) and says what it does. For work that happens later than its decision (a queued shadow write is
    /// decided when enqueued, in commit order, and applied by whichever worker is free).
    public func check(_ point: FaultPoint, entityId: String? = nil, requestId: String? = nil) -> Outcome? {
        guard let decision = decide(point), decision.fires else { return nil }
        record(point, ordinal: decision.ordinal, entityId: entityId, requestId: requestId)
        let fault = InjectedFault(point: point.name, ordinal: decision.ordinal)
        let latency = state.latencyMilliseconds
        return latency > 0 ? .delay(.milliseconds(latency), fault) : .fail(fault)
    }

    /// The fault point itself: call it where the fault can happen. Throws ``InjectedFault`` when chaos strikes,
    /// or, with CHAOS_LATENCY_MS > 0, waits that long instead and returns.
    public func strike(_ point: FaultPoint, entityId: String? = nil, requestId: String? = nil) async throws {
        switch check(point, entityId: entityId, requestId: requestId) {
        case nil: return
        case .delay(let duration, _): try await Task.sleep(for: duration)
        case .fail(let fault): throw fault
        }
    }

    private func record(_ point: FaultPoint, ordinal: UInt64, entityId: String?, requestId: String?) {
        Counter(label: "chaos_injected_faults_total",
                dimensions: [("entity_type", point.entityType), ("operation", point.operation)],
                factory: metrics).increment()
        var metadata: Logger.Metadata = ["point": .string(point.name), "ordinal": .stringConvertible(Int(ordinal))]
        if let requestId { metadata["requestId"] = .string(requestId) }
        if let entityId { metadata["entityId"] = .string(entityId) }
        logger.warning("fault injected", metadata: metadata)
        let entry = InjectedFaultRecord(point: point.name, ordinal: ordinal, entityId: entityId, requestId: requestId, at: Date())
        memory.withLock { faults in
            if faults.count >= Self.memoryCapacity { faults.removeFirst(faults.count / 10) }
            faults.append(entry)
        }
    }

    /// Faults injected since `date` (bounded by ``memoryCapacity``), oldest first.
    public func injectedFaults(since date: Date = .distantPast) -> [InjectedFaultRecord] {
        memory.withLock { $0.filter { $0.at >= date } }
    }
}
