import Foundation
import Hummingbird
import Marketplace
import Synchronization

/// Orders (SPEC §3, §4): placing one takes stock and payment in one transaction; cancelling gives both back.
struct OrderRoutes<Context: BallastRequestContext> {
    let orders: OrderService
    let shipping: any ShippingRates
    let idempotent: IdempotentEffect
    let events: EventBus

    func register(on router: Router<Context>) {
        router.post("/api/orders") { request, context in
            let caller = try context.requireUser()
            do {
                let body = try await request.jsonBody()
                let order = try OrderRequest(body)
                // The quote comes before the transaction (a slow provider never holds row locks) and only when
                // the order will really be attempted (not for an idempotent replay).
                let placed = PlacedOrder()
                let response = try await idempotent.respond(
                    to: request, caller: caller, body: body, status: .created,
                    prepare: { try await shipping.quote(destination: order.destination, items: order.items) }
                ) { quote, sql in
                    let created = try await orders.place(order, quote: quote, buyer: caller, in: sql)
                    placed.set(created)
                    return OrderBody(created)
                }
                // After commit (a replay placed nothing): announce it.
                if let created = placed.value { events.publish(.orderPlaced(created), requestId: context.requestId) }
                orders.countPlacement(response.headers[IdempotentEffect.replayedHeader] == nil ? "created" : "replayed")
                return response
            } catch let error as AppError {
                orders.countPlacement(error.code.rawValue)
                throw error
            }
        }
        router.get("/api/orders/{id}") { _, context in
            let caller = try context.requireUser()
            let id = try OrderID.parsePath(context.parameters.get("id") ?? "", "order")
            return try JSONResponse.make(.ok, OrderBody(try await orders.order(id, for: caller, requestId: context.requestId)))
        }
        router.post("/api/orders/{id}/ship") { _, context in
            let caller = try context.requireAdmin()
            let id = try OrderID.parsePath(context.parameters.get("id") ?? "", "order")
            return try JSONResponse.make(.ok, OrderBody(try await orders.ship(id, by: caller)))
        }
        router.post("/api/orders/{id}/deliver") { _, context in
            let caller = try context.requireAdmin()
            let id = try OrderID.parsePath(context.parameters.get("id") ?? "", "order")
            return try JSONResponse.make(.ok, OrderBody(try await orders.deliver(id, by: caller)))
        }
        router.post("/api/orders/{id}/cancel") { _, context in
            let caller = try context.requireUser()
            let id = try OrderID.parsePath(context.parameters.get("id") ?? "", "order")
            let cancelled = try await orders.cancel(id, by: caller)
            events.publish(.orderCancelled(cancelled), requestId: context.requestId)
            return try JSONResponse.make(.ok, OrderBody(cancelled))
        }
    }
}

/// The order a placement's transaction created (set inside the transaction, read after it committed; a retried
/// transaction overwrites it with the attempt that committed).
final class PlacedOrder: Sendable {
    private let order = Mutex<Order?>(nil)
    func set(_ value: Order) { order.withLock { $0 = value } }
    var value: Order? { order.withLock { $0 } }
}

struct OrderBody: Encodable, Sendable {
    struct Item: Encodable, Sendable {
        let productId: String
        let quantity: Int64
        let unitPrice: Int64
    }

    struct DestinationBody: Encodable, Sendable {
        let country: String
        let postalCode: String
    }

    let id: String
    let status: String
    let buyerId: String
    let walletId: String
    let items: [Item]
    let subtotal: Int64
    let shipping: Int64
    let total: Int64
    let currency = "USD"
    let shippingSource: String
    let destination: DestinationBody
    let createdAt: Date
    let updatedAt: Date

    init(_ order: Order) {
        id = order.id.description
        status = order.status.rawValue
        buyerId = order.buyerId.description
        walletId = order.walletId.description
        items = order.items.map { Item(productId: $0.productId.description, quantity: $0.quantity, unitPrice: $0.unitPrice) }
        subtotal = order.subtotal
        shipping = order.shipping
        total = order.total
        shippingSource = order.shippingSource.rawValue
        destination = DestinationBody(country: order.destination.country, postalCode: order.destination.postalCode)
        createdAt = order.createdAt
        updatedAt = order.updatedAt
    }
}
