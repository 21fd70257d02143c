import BallastWire
import Commerce
import DomainValues
import Foundation
import Hummingbird

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
