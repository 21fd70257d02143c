import BallastWire
import Commerce
import DomainValues
import Foundation
import Hummingbird

/// The catalog: products, their stock and their publication (SPEC §3). Status changes that take products off
/// sale live in ``ProductSafetyRoutes``.
struct ProductRoutes<Context: BallastRequestContext> {
    let products: ProductService

    func register(on router: Router<Context>) {
        router.post("/api/products") { request, context in
            let caller = try context.requireUser()
            let new = try NewProduct(try await request.jsonBody())
            return try JSONResponse.make(.created, ProductBody(try await products.create(new, seller: caller)))
        }
        router.get("/api/products") { request, context in
            let caller = try context.requireUser()
            let query = QueryInput(request)
            let list = try ListQuery(query, cursor: ListQuery.timeCursor)
            let status = try query.choice(ProductQuery.status, as: ProductStatus.self)
            let includeDeleted = try Self.includeDeleted(request, caller)
            let cursor: ProductCursor? = list.creationCursor()
            let page = try await products.list(
                status: status, includeDeleted: includeDeleted, after: cursor, limit: list.limit, for: caller,
                requestId: context.requestId)
            return try JSONResponse.make(.ok, Page(items: page.products.map(ProductBody.init), nextCursor: page.next?.description))
        }
        router.get("/api/products/{id}") { request, context in
            let caller = try context.requireUser()
            let id = try ProductID.parsePath(context.parameters.get("id") ?? "", "product")
            let product = try await products.product(
                id, includeDeleted: try Self.includeDeleted(request, caller), for: caller, requestId: context.requestId)
            return try JSONResponse.make(.ok, ProductBody(product))
        }
        router.patch("/api/products/{id}") { request, context in
            let caller = try context.requireUser()
            let id = try ProductID.parsePath(context.parameters.get("id") ?? "", "product")
            let edit = try ProductEdit(try await request.jsonBody())
            return try JSONResponse.make(.ok, ProductBody(try await products.edit(id, edit, by: caller, requestId: context.requestId)))
        }
        router.post("/api/products/{id}/restock") { request, context in
            let caller = try context.requireUser()
            let id = try ProductID.parsePath(context.parameters.get("id") ?? "", "product")
            let quantity = try RestockRequest(try await request.jsonBody()).quantity
            let product = try await products.restock(id, quantity: quantity, by: caller, requestId: context.requestId)
            return try JSONResponse.make(.ok, ProductBody(product))
        }
        router.post("/api/products/{id}/publish") { _, context in
            let caller = try context.requireUser()
            let id = try ProductID.parsePath(context.parameters.get("id") ?? "", "product")
            return try JSONResponse.make(.ok, ProductBody(try await products.publish(id, by: caller, requestId: context.requestId)))
        }
    }

    /// `?includeDeleted=true|false`; only admins may ask for deleted products.
    static func includeDeleted(_ request: Request, _ caller: User) throws -> Bool {
        guard let value = try QueryInput(request).bool(ProductQuery.includeDeleted) else { return false }
        if value, !caller.isAdmin { throw AppError.forbidden("only admins can see deleted products") }
        return value
    }
}

/// The query parameters of the product reads.
enum ProductQuery {
    static let status = Field.optional("status", Field.choice(ProductStatus.self))
    static let includeDeleted = Field.optional("includeDeleted", .boolean, summary: "admins only")
    static let list = [status, includeDeleted, ListQuery.limit, ListQuery.timeCursor]
}
