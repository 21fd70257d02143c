import Evidence
import Logging
import Metrics
import ServiceLifecycle
import Storage
import Synchronization

/// A claimed outbox row (a queued shadow write) whose completion, the deletion of the row while it is still this
/// claim's, is written in the same transaction as the evidence tied to it.
public struct OutboxClaim: Sendable, Hashable {
    public let entityType: String
    public let entityId: String
    public let version: Int64
    public let claimToken: String

    public init(entityType: String, entityId: String, version: Int64, claimToken: String) {
        self.entityType = entityType
        self.entityId = entityId
        self.version = version
        self.claimToken = claimToken
    }
}

/// Completes claimed outbox rows inside a transaction the appender opens: answers the claims whose rows it deleted
/// (a row whose claim passed to another process is left alone and not answered). Owned here, implemented by the
/// outbox's owner, so the evidence store depends on no domain module.
public protocol OutboxCompleter: Sendable {
    func complete(_ claims: [OutboxClaim], in sql: Transaction) async throws -> Set<OutboxClaim>
}

/// Appends high-volume evidence (shadow-write failures…) off the request path, and completes shadow writes
/// (``OutboxClaim``): `submit` and `complete` only queue and never wait; a background loop writes what is
/// queued in batches, one transaction per batch, on the same chain as every other append.
///
/// A batch is crash-safe and may be written twice (its commit's answer lost, the batch tried again): every event
/// it carries has a key, so the log keeps one record of it, and an event tied to a shadow write
/// (`completing:`) is written only if that write's outbox row was still this claim's to delete, in the same
/// transaction. So each shadow-write failure leaves exactly one record, even when two processes both saw it.
///
/// The queue is bounded: when it is full an item is dropped, counted (`evidence_dropped_total`) and logged, rather
/// than slowing a request; a dropped completion leaves its outbox row, so the write is applied again later. On
/// shutdown the queue is written out before the service returns.
public final class EvidenceAppender: Sendable, Service {
    public let capacity: Int
    public let batchSize: Int
    private let log: EvidenceLog
    private let completer: any OutboxCompleter
    private let logger: Logger
    private let metrics: any MetricsFactory

    /// One queued item: an event to append, a shadow write to complete, or an event that completes one.
    struct Item: Sendable {
        var event: EvidenceEvent?
        var completes: OutboxClaim?
    }

    private let pending = Mutex<[Item]>([])
    /// Wakes the loop; holds at most one signal, so a burst of submits costs one wake-up.
    private let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    /// Serializes writers (the loop and `flush`) so batches commit in queue order.
    private let writer = AsyncSerialGate()

    public init(
        log: EvidenceLog, completer: any OutboxCompleter, capacity: Int = 10_000, batchSize: Int = 256, logger: Logger,
        metrics: any MetricsFactory
    ) {
        precondition(capacity > 0 && batchSize > 0)
        self.log = log
        self.completer = completer
        self.capacity = capacity
        self.batchSize = batchSize
        self.logger = logger
        self.metrics = metrics
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `event`, written only if `completing`'s outbox row is still its claim's (when given); false when the
    /// queue is full and the event was dropped.
    @discardableResult
    public func submit(_ event: EvidenceEvent, completing: OutboxClaim? = nil) -> Bool {
        enqueue(Item(event: event, completes: completing), label: event.eventType)
    }

    /// The `event_type` label under which a dropped shadow-write completion (no event of its own) is counted.
    public static let completionLabel = "shadow_completion"

    /// Queues the completion of a shadow write that landed: its outbox row is deleted in the next batch.
    @discardableResult
    public func complete(_ key: OutboxClaim) -> Bool {
        enqueue(Item(event: nil, completes: key), label: Self.completionLabel)
    }

    private func enqueue(_ item: Item, label: String) -> Bool {
        let accepted = pending.withLock { pending in
            guard pending.count < capacity else { return false }
            pending.append(item)
            return true
        }
        if accepted {
            signal.yield()
        } else {
            Counter(label: "evidence_dropped_total", dimensions: [("event_type", label)], factory: metrics).increment()
            logger.error("evidence queue full; item dropped", metadata: [
                "eventType": .string(label), "capacity": .stringConvertible(capacity),
            ])
        }
        return accepted
    }

    /// Items queued and not yet written.
    public var queued: Int { pending.withLock { $0.count } }

    /// Writes everything queued now, batch by batch, and returns when the queue is empty (or a write failed).
    public func flush() async throws {
        try await writer.run {
            while true {
                let batch: [Item] = pending.withLock { Array($0.prefix(batchSize)) }
                if batch.isEmpty { return }
                let written = try await write(batch)
                // Only this writer removes, so the first `batch.count` queued are exactly the batch written.
                pending.withLock { $0.removeFirst(batch.count) }
                Counter(label: "evidence_appended_total", factory: metrics).increment(by: written)
            }
        }
    }

    /// One batch in one transaction: the outbox rows it completes first (those still this claim's), then the
    /// events (an event tied to a row that was not deleted here is left out). Answers how many records it wrote.
    private func write(_ batch: [Item]) async throws -> Int {
        let keys = batch.compactMap(\.completes)
        return try await log.database.transaction { sql in
            let completed = keys.isEmpty ? [] : try await completer.complete(keys, in: sql)
            let events = batch.compactMap { item -> EvidenceEvent? in
                guard let event = item.event else { return nil }
                guard let key = item.completes else { return event }
                return completed.contains(key) ? event : nil
            }
            return try await log.append(events, in: sql).count
        }
    }

    public func run() async throws {
        await withGracefulShutdownHandler {
            for await _ in signals {
                do {
                    try await flush()
                } catch {
                    logger.error("evidence batch not written; retrying", metadata: ["error": "\(error)"])
                    try? await Task.sleep(for: .milliseconds(500))
                    signal.yield()
                }
            }
        } onGracefulShutdown: { [signal] in
            signal.finish()
        }
        // Write out what is left before the pools close.
        for attempt in 1...3 where queued > 0 {
            do {
                try await flush()
            } catch {
                logger.error("evidence not written at shutdown", metadata: [
                    "attempt": .stringConvertible(attempt), "queued": .stringConvertible(queued), "error": "\(error)",
                ])
            }
        }
    }
}

/// Runs async bodies one at a time, in arrival order.
final class AsyncSerialGate: Sendable {
    private struct State {
        var busy = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func run<R: Sendable>(_ body: () async throws -> R) async throws -> R {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let enterNow = state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if enterNow { continuation.resume() }
        }
        defer {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiters.isEmpty {
                    state.busy = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
