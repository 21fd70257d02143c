import BallastCore
import ChaosKit
import DomainValues
import Logging
import Metrics
import ServiceLifecycle

/// Something that happened, announced after its transaction committed.
public enum DomainEvent: Sendable, Equatable {
    case orderPlaced(Order)
    case orderCancelled(Order)
    case productDisabled(Product)

    /// What kind of event it is; its raw value is the event's name in logs and metrics.
    public enum Kind: String, Sendable, CaseIterable {
        case orderPlaced = "order_placed"
        case orderCancelled = "order_cancelled"
        case productDisabled = "product_disabled"
    }

    public var kind: Kind {
        switch self {
        case .orderPlaced: return .orderPlaced
        case .orderCancelled: return .orderCancelled
        case .productDisabled: return .productDisabled
        }
    }

    /// The event's name in logs and metrics.
    public var name: String { kind.rawValue }
}

/// Delivers domain events to in-process subscribers, after commit and off the request path: `publish` only
/// queues (bounded; a full queue drops and counts), two workers call the subscribers, each call bounded by
/// ``handlerTimeout``. A subscriber that throws or is too slow is logged and counted in
/// `event_handler_failures_total{event,handler,reason}`; nothing of it reaches the request. The fault point
/// `events.dispatch` is checked per delivery.
public final class EventBus: Service, Sendable {
    public typealias Handler = @Sendable (DomainEvent) async throws -> Void

    /// Why a subscriber did not get or handle an event (`event_handler_failures_total{reason}`).
    public enum FailureReason: String, Sendable, CaseIterable {
        /// The queue was full when it was published.
        case dropped
        /// The `events.dispatch` fault point failed it on purpose.
        case injected
        /// The subscriber took longer than ``EventBus/handlerTimeout``.
        case timeout
        /// The subscriber threw.
        case error
    }

    public static let capacity = 10_000
    public static let workerCount = 2
    public static let handlerTimeout: Duration = .seconds(5)

    private struct Subscriber: Sendable {
        let name: String
        let handler: Handler
    }

    private struct Delivery: Sendable {
        let event: DomainEvent
        let subscriber: Subscriber
        let requestId: String?
    }

    private let subscribers: [Subscriber]
    private let queue = BoundedQueue<Delivery>(capacity: EventBus.capacity)
    private let injector: FaultInjector
    private let metrics: any MetricsFactory
    private let logger: Logger

    /// `subscribers` are (name, handler) pairs, fixed for the process's life.
    public init(subscribers: [(String, Handler)], injector: FaultInjector, metrics: any MetricsFactory, logger: Logger) {
        self.subscribers = subscribers.map { Subscriber(name: $0.0, handler: $0.1) }
        self.injector = injector
        self.metrics = metrics
        self.logger = logger
    }

    /// Queues `event` for every subscriber. Never waits, never throws.
    public func publish(_ event: DomainEvent, requestId: String?) {
        for subscriber in subscribers where !queue.tryPush(Delivery(event: event, subscriber: subscriber, requestId: requestId)) {
            failed(event, subscriber.name, reason: .dropped, requestId: requestId, error: "the event queue is full")
        }
    }

    /// Deliveries waiting.
    public var pending: Int { queue.count }

    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<Self.workerCount {
                group.addTask {
                    while let delivery = await self.queue.pop() {
                        await self.deliver(delivery)
                        self.queue.finished()
                    }
                }
            }
            _ = try? await gracefulShutdown()
            queue.close()
        }
    }

    /// Waits (at most `timeout`) until every queued delivery has been made; for tests.
    public func drain(timeout: Duration = .seconds(10)) async {
        _ = await queue.waitUntilIdle(timeout: timeout)
    }

    private func deliver(_ delivery: Delivery) async {
        let name = delivery.subscriber.name
        if case .fail(let fault)? = injector.check(.eventsDispatch, entityId: nil, requestId: delivery.requestId) {
            failed(delivery.event, name, reason: .injected, requestId: delivery.requestId, error: fault.description)
            return
        }
        do {
            try await Deadline.run(Self.handlerTimeout) { try await delivery.subscriber.handler(delivery.event) }
        } catch is Deadline.Passed {
            failed(delivery.event, name, reason: .timeout, requestId: delivery.requestId, error: "no answer within \(Self.handlerTimeout)")
        } catch {
            failed(delivery.event, name, reason: .error, requestId: delivery.requestId, error: String(describing: error))
        }
    }

    private func failed(_ event: DomainEvent, _ handler: String, reason: FailureReason, requestId: String?, error: String) {
        Counter(label: "event_handler_failures_total",
                dimensions: [("event", event.name), ("handler", handler), ("reason", reason.rawValue)], factory: metrics).increment()
        var metadata: Logger.Metadata = [
            "event": .string(event.name), "handler": .string(handler), "reason": .string(reason.rawValue), "error": .string(error),
        ]
        if let requestId { metadata["requestId"] = .string(requestId) }
        logger.warning("event handler failed", metadata: metadata)
    }
}
