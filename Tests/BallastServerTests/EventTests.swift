import BallastServer
import BallastTestSupport
import Foundation
import HTTPTypes
import Commerce
import Testing

struct HandlerBroke: Error {}

/// The chaos suite "external services", part two: domain events reach subscribers after commit, and a
/// subscriber that throws never reaches the request.
@Suite("Domain events", .timeLimit(.minutes(10)))
struct EventTests {
    @Test(arguments: TestStores.kinds)
    func aThrowingSubscriberIsCountedAndNeverFailsTheOrder(kind: StoreKind) async throws {
        let seen = Locked<[String]>([])
        let subscribers: [(String, EventBus.Handler)] = [
            ("recorder", { event in seen.withLock { $0.append(event.name) } }),
            ("broken", { _ in throw HandlerBroke() }),
        ]
        try await TestApp.run(kind, eventSubscribers: subscribers) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 100, stock: 10)
            let buyer = try await app.buyer(funds: 10_000)
            let key: HTTPFields = [HTTPField.Name("Idempotency-Key")!: "events-1"]
            let placed = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)], headers: key)
            #expect(placed.status == .created)
            // A replay placed nothing, so it announces nothing.
            let replayed = try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)], headers: key)
            #expect(replayed.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let orderId = try #require(placed.json["id"] as? String)
            #expect(try await app.post("/api/orders/\(orderId)/cancel", buyer.token).status == .ok)
            #expect(try await app.post("/api/products/\(product)/disable", seller, #"{"confirm":true}"#).status == .ok)
            #expect(try await app.post("/api/products/\(product)/disable", seller, #"{"confirm":true}"#).status == .ok)  // no change
            await app.services.events.drain()
            #expect(seen.withLock { $0 } == ["order_placed", "order_cancelled", "product_disabled"])
            #expect(try await app.metric(#"event_handler_failures_total{event="order_placed",handler="broken",reason="error"}"#) == 1)
            #expect(try await app.metric(#"event_handler_failures_total{event="product_disabled",handler="broken",reason="error"}"#) == 1)
            #expect(app.logSink.lines.filter { $0.contains(#""message":"event handler failed""#) }.count == 3)
            #expect(try await app.metric(#"domain_events_total{event="order_placed"}"#) == 1)
        }
    }

    @Test(arguments: TestStores.kinds)
    func anInjectedDispatchFaultIsCountedAndTheOrderStands(kind: StoreKind) async throws {
        try await TestApp.run(kind, environment: [
            "CHAOS_ENABLED": "true", "CHAOS_FAIL_RATE": "1", "CHAOS_SCOPE": "all_writes",
        ]) { app in
            let seller = try await app.createUser(name: "seller")
            let product = try await app.createProduct(token: seller, price: 100, stock: 10)
            let buyer = try await app.buyer(funds: 10_000)
            #expect(try await app.order(token: buyer.token, wallet: buyer.wallet, [(product, 1)]).status == .created)
            await app.services.events.drain()
            #expect(try await app.metric(#"event_handler_failures_total{event="order_placed",handler="audit-log",reason="injected"}"#) == 1)
            #expect(try await app.metric(#"domain_events_total{event="order_placed"}"#) == 0)
            #expect(try await app.orderCount() == 1)
        }
    }
}
