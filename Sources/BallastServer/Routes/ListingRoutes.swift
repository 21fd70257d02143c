import BallastWire
import Commerce
import DomainValues
import Foundation
import Hummingbird

/// Listings (SPEC §3, §7): written to the primary store and mirrored to the shadow store after commit.
struct ListingRoutes<Context: BallastRequestContext> {
    let listings: ListingService

    func register(on router: Router<Context>) {
        router.post("/api/listings") { request, context in
            let caller = try context.requireUser()
            let new = try NewListing(try await request.jsonBody())
            let listing = try await listings.create(new, owner: caller, requestId: context.requestId)
            return try JSONResponse.make(.created, ListingBody(listing))
        }
        router.get("/api/listings") { request, context in
            _ = try context.requireUser()
            let list = try ListQuery(request, cursor: ListQuery.timeCursor)
            let cursor: ListingCursor? = list.creationCursor()
            let page = try await listings.list(after: cursor, limit: list.limit, requestId: context.requestId)
            return try JSONResponse.make(.ok, Page(items: page.listings.map(ListingBody.init), nextCursor: page.next?.description))
        }
        router.get("/api/listings/{id}") { _, context in
            _ = try context.requireUser()
            let id = try ListingID.parsePath(context.parameters.get("id") ?? "", "listing")
            return try JSONResponse.make(.ok, ListingBody(try await listings.listing(id, requestId: context.requestId)))
        }
        router.patch("/api/listings/{id}") { request, context in
            let caller = try context.requireUser()
            let id = try ListingID.parsePath(context.parameters.get("id") ?? "", "listing")
            let edit = try ListingEdit(try await request.jsonBody())
            return try JSONResponse.make(.ok, ListingBody(try await listings.update(id, edit, by: caller, requestId: context.requestId)))
        }
        router.delete("/api/listings/{id}") { _, context in
            let caller = try context.requireUser()
            let id = try ListingID.parsePath(context.parameters.get("id") ?? "", "listing")
            return try JSONResponse.make(.ok, ListingBody(try await listings.delete(id, by: caller, requestId: context.requestId)))
        }
    }
}
