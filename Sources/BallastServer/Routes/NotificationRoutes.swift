import DomainValues
import Foundation
import Hummingbird
import Marketplace

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

struct NotificationBody: Encodable, Sendable {
    let id: String
    let channel: String
    let recipient: String
    let template: String
    @Null var orderId: String?
    let status: String
    let attempts: Int
    let nextAttemptAt: Date
    @Null var lastError: String?
    let createdAt: Date
    @Null var sentAt: Date?

    init(_ record: NotificationRecord) {
        id = record.id
        channel = record.channel
        recipient = record.recipient
        template = record.template
        orderId = record.orderId
        status = record.status
        attempts = record.attempts
        nextAttemptAt = record.nextAttemptAt
        lastError = record.lastError
        createdAt = record.createdAt
        sentAt = record.sentAt
    }
}
