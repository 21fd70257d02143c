import ChaosKit
import Evidence
import Foundation
import Logging
import Metrics
import SQLKit
import ServiceLifecycle
import Storage
import Synchronization

/// Mirrors primary writes into the shadow store, off the request path.
///
/// After a primary commit the route hands over the row (``enqueue(_:)``): the fault point is decided there, in
/// commit order, so a sequential workload with a fixed seed fails the same writes however many workers apply
/// the queue. The write then waits in a bounded queue; a full queue drops it. Workers apply each as an upsert
/// that never moves a row back to an older version. Every failure (injected, error, timeout, dropped) is a log
/// line with the request id, a `shadow_write_failures_total` count and one SHADOW_WRITE_FAILURE evidence record.
/// The primary write and its response never depend on any of it.
public final class ShadowWriter: Service, Sendable {
    /// Writes applied at the same time.
    public static let workerCount = 4
    /// How long one shadow write may take before it counts as failed (`timeout`).
    public static let writeTimeout: Duration = .seconds(5)
    /// How long shutdown waits for the queue to drain before dropping the rest.
    public static let drainTimeout: Duration = .seconds(5)

    let shadow: Database
    let injector: FaultInjector
    let evidence: EvidenceAppender
    let metrics: any MetricsFactory
    let logger: Logger
    let queue: BoundedQueue<ShadowWrite>

    public init(
        shadow: Database, capacity: Int, injector: FaultInjector, evidence: EvidenceAppender, metrics: any MetricsFactory,
        logger: Logger
    ) {
        self.shadow = shadow
        self.queue = BoundedQueue(capacity: capacity)
        self.injector = injector
        self.evidence = evidence
        self.metrics = metrics
        self.logger = logger
    }

    /// Writes waiting to be applied.
    public var pending: Int { queue.count }

    /// Takes a committed row for the shadow. Never waits and never throws: what cannot be kept is recorded.
    public func enqueue(_ write: ShadowWrite) {
        var job = write
        switch injector.check(write.point, entityId: write.entityId, requestId: write.requestId) {
        case .fail(let fault)?:
            recordFailure(write, .injected, point: fault.point, ordinal: fault.ordinal, error: nil)
            return
        case .delay(let duration, _)?:
            job.delay = duration
        case nil:
            break
        }
        if !queue.tryPush(job) {
            recordFailure(write, .dropped, point: write.point.name, ordinal: nil, error: "the shadow queue is full")
        }
    }

    /// Runs the workers until shutdown, then lets them drain the queue for at most ``drainTimeout``; what is
    /// left after that is recorded as dropped.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<Self.workerCount {
                group.addTask {
                    while let job = await self.queue.pop() { await self.apply(job) }
                }
            }
            // Graceful shutdown drains; cancellation stops at once.
            let graceful = (try? await gracefulShutdown()) != nil
            queue.close()
            let deadline = ContinuousClock.now + Self.drainTimeout
            while graceful, ContinuousClock.now < deadline, queue.count > 0 || busy.load() > 0 {
                try? await Task.sleep(for: .milliseconds(20))
            }
            // Past the deadline: what is still queued is not applied (workers then find the queue empty and
            // stop; a write in flight finishes under its own timeout).
            for write in queue.removeAll() {
                recordFailure(write, .dropped, point: write.point.name, ordinal: nil, error: "the server stopped before it was applied")
            }
        }
    }

    /// Applies queued writes until the queue is empty (tests and the verifier use it to settle the shadow).
    public func drain(timeout: Duration = .seconds(10)) async {
        let deadline = ContinuousClock.now + timeout
        while queue.count > 0 || busy.load() > 0, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    private let busy = BusyCounter()

    func apply(_ job: ShadowWrite) async {
        busy.add(1)
        defer { busy.add(-1) }
        if let delay = job.delay { try? await Task.sleep(for: delay) }
        let started = ContinuousClock.now
        let outcome: ShadowFailure?
        var message: String?
        do {
            try await Deadline.run(Self.writeTimeout) { [shadow] in
                try await shadow.transaction { sql in try await Self.upsert(job.listing, sql) }
            }
            outcome = nil
        } catch is Deadline.Passed {
            outcome = .timeout
            message = "no answer within \(Self.writeTimeout)"
        } catch {
            outcome = .error
            message = String(describing: error)
        }
        let dimensions = [("entity_type", job.entityType), ("operation", job.operation.rawValue)]
        let elapsed = ContinuousClock.now - started
        Timer(label: "shadow_write_duration_seconds", dimensions: dimensions + [("success", outcome == nil ? "true" : "false")],
              factory: metrics)
            .recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
        if let outcome {
            recordFailure(job, outcome, point: job.point.name, ordinal: nil, error: message)
        } else {
            Counter(label: "shadow_write_successes_total", dimensions: dimensions, factory: metrics).increment()
        }
    }

    /// The idempotent upsert: a row at an older version than the stored one changes nothing, so writes applied
    /// out of order (or twice) leave the newest state. A delete is a tombstone with its version.
    static func upsert(_ listing: Listing, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO listings (id, owner_id, title, price, version, created_at_micros, updated_at_micros, deleted)
            VALUES (\(bind: listing.id.description), \(bind: listing.ownerId.description), \(bind: listing.title),
                    \(bind: listing.price), \(bind: listing.version), \(bind: listing.createdAtMicros),
                    \(bind: listing.updatedAtMicros), \(bind: listing.deletedAtMicros == nil ? 0 : 1))
            ON CONFLICT (id) DO UPDATE SET
                owner_id = excluded.owner_id, title = excluded.title, price = excluded.price, version = excluded.version,
                created_at_micros = excluded.created_at_micros, updated_at_micros = excluded.updated_at_micros,
                deleted = excluded.deleted
            WHERE listings.version < excluded.version
            """).run()
    }

    func recordFailure(_ write: ShadowWrite, _ failure: ShadowFailure, point: String, ordinal: UInt64?, error: String?) {
        Counter(label: "shadow_write_failures_total", dimensions: [
            ("entity_type", write.entityType), ("operation", write.operation.rawValue), ("failure_type", failure.rawValue),
        ], factory: metrics).increment()
        var metadata: Logger.Metadata = [
            "entityType": .string(write.entityType), "entityId": .string(write.entityId),
            "operation": .string(write.operation.rawValue), "failureType": .string(failure.rawValue),
            "point": .string(point), "version": .stringConvertible(Int(write.listing.version)),
        ]
        if let requestId = write.requestId { metadata["requestId"] = .string(requestId) }
        if let ordinal { metadata["ordinal"] = .stringConvertible(Int(ordinal)) }
        if let error { metadata["error"] = .string(error) }
        logger.warning("shadow write failed", metadata: metadata)
        var details: [String: CanonicalJSON] = [
            "failureType": .string(failure.rawValue), "point": .string(point),
            "operation": .string(write.operation.rawValue), "version": .integer(write.listing.version),
            "ordinal": ordinal.map { .integer(Int64($0)) } ?? .null,
        ]
        if let error { details["error"] = .string(String(error.prefix(300))) }
        _ = evidence.submit(EvidenceEvent(
            controlId: EvidenceControl.systemMonitoring, category: EvidenceCategory.processingIntegrity,
            eventType: EvidenceType.shadowWriteFailure, eventOutcome: "FAILURE", entityType: write.entityType,
            entityId: write.entityId, requestId: write.requestId, details: .object(details)))
    }
}

/// Writes being applied right now.
final class BusyCounter: Sendable {
    private let value = Atomic<Int>(0)
    func add(_ delta: Int) { value.wrappingAdd(delta, ordering: .relaxed) }
    func load() -> Int { value.load(ordering: .relaxed) }
}
