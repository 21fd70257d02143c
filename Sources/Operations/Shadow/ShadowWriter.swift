import BallastCore
import ChaosKit
import Commerce
import DomainValues
import Evidence
import EvidenceStore
import Foundation
import Logging
import Metrics
import SQLKit
import ServiceLifecycle
import Storage
import Synchronization
import Tracing

/// Mirrors primary writes into the shadow store, off the request path, without losing one to a crash.
///
/// Every listing write records its shadow write in the outbox in its own transaction (``record(_:_:requestId:in:)``),
/// claimed by this process; after the commit the route hands over the row (``enqueue(_:)``): the fault point is
/// decided there, in commit order, so a sequential workload with a fixed seed fails the same writes however many
/// workers apply the queue. The write then waits in a bounded queue; a full queue drops it. Workers apply each as an
/// upsert that never moves a row back to an older version, and complete its outbox row. Every failure (injected,
/// error, timeout, dropped) is a log line with the request id, a `shadow_write_failures_total` count and one
/// SHADOW_WRITE_FAILURE evidence record, written with the outbox row's completion (so exactly once, however many
/// processes saw it). A row whose claim expired (its process was killed, or paused) is swept up and applied from
/// the primary's current row by any process. The primary write and its response never depend on any of it.
public final class ShadowWriter: ListingMirror, Service, Sendable {
    /// Writes applied at the same time.
    public static let workerCount = 4
    /// How long one shadow write may take before it counts as failed (`timeout`).
    public static let writeTimeout: Duration = .seconds(5)
    /// How long shutdown waits for the queue to drain before leaving the rest to the outbox.
    public static let drainTimeout: Duration = .seconds(5)
    /// How often the outbox is swept for writes whose claim expired.
    static let sweepInterval: Duration = .seconds(2)

    let primary: Database
    let shadow: Database
    let injector: FaultInjector
    let evidence: EvidenceAppender
    let metrics: any MetricsFactory
    let logger: Logger
    let queue: BoundedQueue<ShadowWrite>
    /// How long a claim on an outbox row lasts (SHADOW_CLAIM_SECONDS).
    let claimSeconds: Int64
    /// The token of this process's claims on the rows it writes.
    let token = UUID.random().lowercasedString

    public init(
        primary: Database, shadow: Database, capacity: Int, claimSeconds: Int64 = 120, injector: FaultInjector,
        evidence: EvidenceAppender, metrics: any MetricsFactory, logger: Logger
    ) {
        precondition(claimSeconds >= 10, "a claim holds a queued write for at least ten seconds")
        self.primary = primary
        self.shadow = shadow
        self.queue = BoundedQueue(capacity: capacity)
        self.claimSeconds = claimSeconds
        self.injector = injector
        self.evidence = evidence
        self.metrics = metrics
        self.logger = logger
    }

    /// Writes waiting to be applied in this process.
    public var pending: Int { queue.count }

    /// The listings' mirror: records the change's shadow write in the outbox, inside the listing's transaction
    /// (`sql`), claimed by this process; the hand-off, after the commit, is ``enqueue(_:)``.
    public func record(
        _ listing: Listing, _ change: ListingChange, requestId: String?, in sql: Transaction
    ) async throws -> MirrorHandoff {
        let write = try await recordWrite(listing, change, requestId: requestId, in: sql)
        return MirrorHandoff { [self] in enqueue(write) }
    }

    /// Records `listing`'s shadow write in the outbox, inside the listing's transaction (`sql`), claimed by this
    /// process; answers the write to hand to ``enqueue(_:)`` once the transaction committed.
    func recordWrite(
        _ listing: Listing, _ operation: ShadowWrite.Operation, requestId: String?, in sql: Transaction
    ) async throws -> ShadowWrite {
        let traceParent = Traces.currentTraceParent()
        try await ShadowOutbox.insert(listing, operation, requestId: requestId, traceParent: traceParent, token: token,
                                      claimSeconds: claimSeconds, database: primary, in: sql)
        let key = ShadowOutboxKey(entityType: ShadowOutbox.entityType, entityId: listing.id.description,
                                  version: listing.version, claimToken: token)
        return ShadowWrite(listing, operation, requestId: requestId, outbox: key, traceParent: traceParent)
    }

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

    /// Runs the workers and the outbox sweeper until shutdown, then lets the workers drain the queue for at most
    /// ``drainTimeout``; what is left stays in the outbox (its claims given up), for another process or the next
    /// start to apply.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<Self.workerCount {
                group.addTask {
                    while let job = await self.queue.pop() {
                        await self.apply(job)
                        self.queue.finished()
                    }
                }
            }
            group.addTask { await self.sweep() }
            // Graceful shutdown drains; cancellation stops at once.
            let graceful = (try? await gracefulShutdown()) != nil
            stopSweeping.withLock { $0 = true }
            queue.close()
            if graceful { _ = await queue.waitUntilIdle(timeout: Self.drainTimeout) }
            let left = queue.removeAll()
            if !left.isEmpty {
                logger.warning("shadow writes left in the outbox at shutdown", metadata: ["count": .stringConvertible(left.count)])
                try? await ShadowOutbox.release(left.compactMap(\.outbox), primary)
            }
        }
    }

    private let stopSweeping = Mutex(false)

    /// Every ``sweepInterval``, claims outbox rows whose claim expired and queues their listing's current row.
    private func sweep() async {
        while !stopSweeping.withLock({ $0 }), !Task.isCancelled {
            try? await Task.sleep(for: Self.sweepInterval)
            if stopSweeping.withLock({ $0 }) { return }
            do {
                _ = try await sweepOnce()
            } catch {
                logger.warning("could not sweep the shadow outbox; trying again", metadata: ["error": "\(error)"])
            }
        }
    }

    /// One sweep: answers how many writes it queued.
    @discardableResult
    public func sweepOnce() async throws -> Int {
        let room = queue.capacity - queue.count
        guard room > 0 else { return 0 }
        let sweepToken = UUID.random().lowercasedString
        let claimed = try await ShadowOutbox.claimExpired(primary, token: sweepToken, claimSeconds: claimSeconds,
                                                          limit: min(room, 500))
        guard !claimed.isEmpty else { return 0 }
        let current = try await primary.read { sql in
            try await ListingService.rows(claimed.map(\.entity_id), sql)
        }
        var queued = 0
        for row in claimed {
            let key = ShadowOutboxKey(entityType: ShadowOutbox.entityType, entityId: row.entity_id, version: row.version,
                                      claimToken: sweepToken)
            guard let listing = current[row.entity_id] else {
                // No such listing (it cannot be deleted, only soft-deleted): nothing to mirror.
                evidence.complete(key)
                continue
            }
            // The current row, maybe newer than the version recorded: the versioned upsert makes either right.
            let write = ShadowWrite(listing, ShadowWrite.Operation(rawValue: row.operation) ?? .update, requestId: row.request_id,
                                    outbox: key, traceParent: row.trace_parent)
            if queue.tryPush(write) { queued += 1 }
        }
        if queued > 0 {
            Counter(label: "shadow_writes_swept_total", factory: metrics).increment(by: queued)
            logger.info("swept shadow writes whose claim had expired", metadata: ["count": .stringConvertible(queued)])
        }
        return queued
    }

    /// Applies queued writes until the queue is empty (tests and the verifier use it to settle the shadow).
    public func drain(timeout: Duration = .seconds(10)) async {
        _ = await queue.waitUntilIdle(timeout: timeout)
    }

    func apply(_ job: ShadowWrite) async {
        // Continues the trace of the request whose commit it mirrors.
        await Traces.continuing(job.traceParent, "shadow write", kind: .client) { span in
            span?.updateAttributes { attributes in
                attributes["ballast.entity.type"] = job.entityType
                attributes["ballast.entity.id"] = job.entityId
                attributes["ballast.shadow.operation"] = job.operation.rawValue
            }
            let failure = await applyInTrace(job)
            if let failure {
                span?.attributes["ballast.shadow.failure"] = failure.rawValue
                span?.setStatus(SpanStatus(code: .error))
            }
        }
    }

    /// Applies one write; answers how it failed, or nil.
    @discardableResult
    private func applyInTrace(_ job: ShadowWrite) async -> ShadowFailure? {
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
            .recordNanoseconds(elapsed.wholeNanoseconds)
        if let outcome {
            recordFailure(job, outcome, point: job.point.name, ordinal: nil, error: message)
        } else {
            Counter(label: "shadow_write_successes_total", dimensions: dimensions, factory: metrics).increment()
            if let key = job.outbox { evidence.complete(key) }
        }
        return outcome
    }

    /// The idempotent upsert: a row at an older version than the stored one changes nothing, so writes applied
    /// out of order (or twice) leave the newest state. A delete is a tombstone with its version.
    static func upsert(_ listing: Listing, _ sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO listings (id, owner_id, title, price, version, created_at_micros, updated_at_micros, deleted)
            VALUES (\(bind: listing.id.description), \(bind: listing.ownerId.description), \(bind: listing.title),
                    \(bind: listing.priceMinor), \(bind: listing.version), \(bind: listing.createdAtMicros),
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
            .shadowWriteFailure, outcome: .failure, entityType: write.entityType,
            entityId: write.entityId, requestId: write.requestId, details: .object(details), key: write.failureKey),
            completing: write.outbox)
    }
}
