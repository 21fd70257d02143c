import BallastWire
import Commerce
import DomainValues
import Foundation
import Hummingbird

/// The notification outbox (SPEC §3, §8): admins only.
struct NotificationRoutes<Context: BallastRequestContext> {
    let notifications: NotificationAdmin

    func register(on router: Router<Context>) {
        router.get("/api/admin/notifications") { request, context in
            _ = try context.requireAdmin()
            let query = QueryInput(request)
            let list = try ListQuery(query, cursor: ListQuery.timeCursor)
            let status = try query.choice(NotificationQuery.status, as: NotificationAdmin.Status.self)
            let page = try await notifications.list(status: status, after: list.timeAndIdCursor(), limit: list.limit)
            return try JSONResponse.make(.ok, Page(items: page.records.map(NotificationBody.init), nextCursor: page.next))
        }
        router.post("/api/admin/notifications/{id}/retry") { _, context in
            let caller = try context.requireAdmin()
            let id = try NotificationID.parsePath(context.parameters.get("id") ?? "", "notification")
            let record = try await notifications.retry(id.description, by: AuditActor(user: caller, requestId: context.requestId))
            return try JSONResponse.make(.ok, NotificationBody(record))
        }
    }
}

/// The query parameters of the notification list.
enum NotificationQuery {
    static let status = Field.optional("status", Field.choice(NotificationAdmin.Status.self))
    static let list = [status, ListQuery.limit, ListQuery.timeCursor]
}
