import BallastWire
import Commerce
import DomainValues
import Foundation
import Hummingbird

/// Admin safety (SPEC §5): the impact preview and the guarded status changes. Destructive ones need
/// `confirm: true`; without it they answer 409 confirmation_required with the impact preview.
struct ProductSafetyRoutes<Context: BallastRequestContext> {
    let products: ProductService

    func register(on router: Router<Context>) {
        router.get("/api/products/{id}/impact") { _, context in
            let caller = try context.requireUser()
            let id = try ProductID.parsePath(context.parameters.get("id") ?? "", "product")
            return try JSONResponse.make(.ok, ImpactBody(try await products.impact(id, for: caller)))
        }
        router.post("/api/products/{id}/disable") { request, context in
            try await guarded(request, context, products.disable)
        }
        router.post("/api/products/{id}/archive") { request, context in
            try await guarded(request, context, products.archive)
        }
        router.delete("/api/products/{id}") { request, context in
            try await guarded(request, context, products.delete)
        }
        router.post("/api/products/{id}/restore") { _, context in
            let (caller, id) = try Self.target(context)
            return try JSONResponse.make(.ok, ProductBody(try await products.restore(id, by: caller, requestId: context.requestId)))
        }
        router.post("/api/products/bulk-disable") { request, context in
            let caller = try context.requireAdmin()
            let bulk = try BulkDisableRequest(try await request.jsonBody())
            let changed = try await products.bulkDisable(bulk.ids, confirm: bulk.confirm, by: caller, requestId: context.requestId)
            return try JSONResponse.make(.ok, BulkDisableBody(disabled: changed.count, products: changed.map(ProductBody.init)))
        }
    }

    typealias GuardedChange = @Sendable (ProductID, Bool, User, String?) async throws -> Product

    /// A destructive change of the product in the path, with its `confirm`.
    func guarded(_ request: Request, _ context: Context, _ change: GuardedChange) async throws -> Response {
        let (caller, id) = try Self.target(context)
        let confirm = try await Self.confirm(request)
        return try JSONResponse.make(.ok, ProductBody(try await change(id, confirm, caller, context.requestId)))
    }

    static func target(_ context: Context) throws -> (User, ProductID) {
        let caller = try context.requireUser()
        return (caller, try ProductID.parsePath(context.parameters.get("id") ?? "", "product"))
    }

    /// `confirm` from the body (`{"confirm": true}`) or the query (`?confirm=true`); absent means false.
    static func confirm(_ request: Request) async throws -> Bool {
        let query = try QueryInput(request).bool(ConfirmQuery.confirm) ?? false
        return try ConfirmRequest(try await request.optionalJSONBody()).confirm || query
    }
}

/// `?confirm=` of DELETE, for clients that send no body with it.
enum ConfirmQuery {
    static let confirm = Field.optional("confirm", .boolean)
}
