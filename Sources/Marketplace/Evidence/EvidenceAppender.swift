import Evidence
import Logging
import Metrics
import ServiceLifecycle
import Synchronization

/// Appends high-volume evidence (shadow-write failures…) off the request path: `submit` only queues and never
/// waits; a background loop writes queued records in batches, one transaction per batch, on the same chain as
/// every other append.
///
/// The queue is bounded: when it is full a record is dropped, counted (`evidence_dropped_total`) and logged,
/// rather than slowing a request. On shutdown the queue is written out before the service returns.
public final class EvidenceAppender: Sendable, Service {
    public let capacity: Int
    public let batchSize: Int
    private let log: EvidenceLog
    private let logger: Logger
    private let metrics: any MetricsFactory

    private let pending = Mutex<[EvidenceEvent]>([])
    /// Wakes the loop; holds at most one signal, so a burst of submits costs one wake-up.
    private let signals: AsyncStream<Void>
    private let signal: AsyncStream<Void>.Continuation
    /// Serializes writers (the loop and `flush`) so batches commit in queue order.
    private let writer = AsyncSerialGate()

    public init(log: EvidenceLog, capacity: Int = 10_000, batchSize: Int = 256, logger: Logger, metrics: any MetricsFactory) {
        precondition(capacity > 0 && batchSize > 0)
        self.log = log
        self.capacity = capacity
        self.batchSize = batchSize
        self.logger = logger
        self.metrics = metrics
        (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `event`; false when the queue is full and the event was dropped.
    @discardableResult
    public func submit(_ event: EvidenceEvent) -> Bool {
        let accepted = pending.withLock { pending in
            guard pending.count < capacity else { return false }
            pending.append(event)
            return true
        }
        if accepted {
            signal.yield()
        } else {
            Counter(label: "evidence_dropped_total", dimensions: [("event_type", event.eventType)], factory: metrics).increment()
            logger.error("evidence queue full; record dropped", metadata: [
                "eventType": .string(event.eventType), "capacity": .stringConvertible(capacity),
            ])
        }
        return accepted
    }

    /// Records queued and not yet written.
    public var queued: Int { pending.withLock { $0.count } }

    /// Writes everything queued now, batch by batch, and returns when the queue is empty (or a write failed).
    public func flush() async throws {
        try await writer.run {
            while true {
                let batch: [EvidenceEvent] = pending.withLock { Array($0.prefix(batchSize)) }
                if batch.isEmpty { return }
                try await log.append(batch)
                // Only this writer removes, so the first `batch.count` queued are exactly the batch written.
                pending.withLock { $0.removeFirst(batch.count) }
                Counter(label: "evidence_appended_total", factory: metrics).increment(by: batch.count)
            }
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
