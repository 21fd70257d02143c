import Foundation
import Hummingbird
import Marketplace

/// Admin safety (SPEC §5): the impact preview and the guarded status changes. Destructive ones need
/// `confirm: true`; without it they answer 409 confirmation_required with the impact preview.
struct ProductSafetyRoutes<Context: BallastRequestContext> {
    let products: ProductService

    /// Products in one bulk disable.
    static var maximumBulk: Int { 500 }

    func register(on router: Router<Context>) {
        router.get("/api/products/{id}/impact") { _, context in
            let caller = try context.requireUser()
            let id = try ProductID.parsePath(context.parameters.get("id") ?? "", "product")
            return try JSONResponse.make(.ok, try await products.impact(id, for: caller).json)
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
            let input = try await request.jsonObject()
            let ids = try Self.ids(input)
            let confirm = try input.optionalBool("confirm") ?? false
            let changed = try await products.bulkDisable(ids, confirm: confirm, by: caller, requestId: context.requestId)
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
        var confirm = false
        if let text = request.uri.queryParameters["confirm"].map(String.init), !text.isEmpty {
            guard let value = Bool(text) else { throw AppError.invalidField("confirm", "confirm must be true or false") }
            confirm = value
        }
        if let input = try await request.optionalJSONObject(), let value = try input.optionalBool("confirm") {
            confirm = confirm || value
        }
        return confirm
    }

    /// `ids`: 1 to 500 distinct product UUIDs.
    static func ids(_ input: InputObject) throws -> [ProductID] {
        guard case .array(let values)? = input.fields["ids"] else {
            throw AppError.invalidField("ids", "ids must be an array of product ids")
        }
        guard (1...maximumBulk).contains(values.count) else {
            throw AppError.invalidField("ids", "ids must hold 1 to \(maximumBulk) product ids, got \(values.count)")
        }
        var seen: Set<ProductID> = []
        return try values.enumerated().map { index, value in
            guard case .string(let text) = value, let id = ProductID(text) else {
                throw AppError.invalidField("ids[\(index)]", "ids[\(index)] must be a product id (UUID)")
            }
            guard seen.insert(id).inserted else {
                throw AppError.invalidField("ids[\(index)]", "product \(id) appears more than once")
            }
            return id
        }
    }
}

struct BulkDisableBody: Encodable, Sendable {
    let disabled: Int
    let products: [ProductBody]
}
