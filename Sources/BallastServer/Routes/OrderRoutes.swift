import DomainValues
import Foundation
import Hummingbird
import Marketplace

/// Orders (SPEC §3, §4): placing one takes stock and payment in one transaction; cancelling gives both back.
struct OrderRoutes<Context: BallastRequestContext> {
    let orders: OrderService
    let placement: OrderPlacement

    func register(on router: Router<Context>) {
        router.post("/api/orders") { request, context in
            let caller = try context.requireUser()
            return CommandHTTP.response(try await placement.place(
                buyer: caller, requestId: context.requestId, load: { try await CommandHTTP.command(request) }
            ) { try CommandHTTP.render(OrderBody($0)) })
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
            return try JSONResponse.make(.ok, OrderBody(try await orders.cancel(id, by: caller, requestId: context.requestId)))
        }
    }
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
        items = order.items.map { Item(productId: $0.productId.description, quantity: $0.quantity, unitPrice: $0.unitPriceMinor) }
        subtotal = order.subtotalMinor
        shipping = order.shippingMinor
        total = order.totalMinor
        shippingSource = order.shippingSource.rawValue
        destination = DestinationBody(country: order.destination.country, postalCode: order.destination.postalCode)
        createdAt = order.createdAt
        updatedAt = order.updatedAt
    }
}
