import DomainValues
import Evidence
import EvidenceStore
import Foundation
import SQLKit
import Storage

/// A notification as `GET /api/admin/notifications` shows it.
public struct NotificationRecord: Sendable, Equatable {
    public let id: String
    public let channel: String
    public let recipient: String
    public let template: String
    public let orderId: String?
    public let status: String
    public let attempts: Int
    public let nextAttemptAt: Date
    public let lastError: String?
    public let createdAt: Date
    public let sentAt: Date?
}

/// Listing the outbox and sending a dead notification round again (admins).
public struct NotificationAdmin: Sendable {
    public enum Status: String, Sendable, CaseIterable {
        case pending, sent, dead
    }

    let database: Database
    let evidence: EvidenceLog

    public init(database: Database, evidence: EvidenceLog) {
        self.database = database
        self.evidence = evidence
    }

    /// Newest first, after the cursor (`MICROS_ID`).
    public func list(status: Status?, after cursor: (micros: Int64, id: String)?, limit: Int) async throws
        -> (records: [NotificationRecord], next: String?)
    {
        let rows = try await database.read { sql in
            var query: SQLQueryString = "SELECT \(unsafeRaw: NotificationRow.columnList) FROM notifications WHERE 1 = 1"
            if let status { query += " AND status = \(bind: status.rawValue)" }
            if let cursor {
                query += """
                     AND (created_at_micros < \(bind: cursor.micros) OR (created_at_micros = \(bind: cursor.micros) AND id < \(bind: cursor.id)))
                    """
            }
            query += " ORDER BY created_at_micros DESC, id DESC LIMIT \(bind: limit + 1)"
            return try await sql.raw(query).all(decoding: NotificationRow.self)
        }
        let next = rows.count > limit ? "\(rows[limit - 1].created_at_micros)_\(rows[limit - 1].id)" : nil
        return (rows.prefix(limit).map(\.record), next)
    }

    /// A dead notification back to pending, due now, with its attempts reset; ADMIN_ACTION evidence in the same
    /// transaction. 404 for an unknown id; 409 invalid_transition unless it is dead.
    public func retry(_ id: String, by actor: AuditActor) async throws -> NotificationRecord {
        try await database.transaction { sql in
            guard let row = try await sql.raw("SELECT \(unsafeRaw: NotificationRow.columnList) FROM notifications WHERE id = \(bind: id)")
                .first(decoding: NotificationRow.self)
            else { throw AppError.notFound("notification") }
            guard row.status == "dead" else {
                throw AppError(.invalidTransition, "only a dead notification can be retried; this one is \(row.status)",
                               details: ["notificationId": .string(id), "status": .string(row.status)])
            }
            let now = Database.nowMicros(on: sql)
            // Conditional on still being dead: a concurrent retry that committed first wins, this one is a 409.
            guard let updated = try await sql.raw("""
                UPDATE notifications SET status = 'pending', attempts = 0, next_attempt_at_micros = \(now),
                    claimed_until_micros = NULL, claim_token = NULL, updated_at_micros = \(now)
                WHERE id = \(bind: id) AND status = 'dead'
                RETURNING \(unsafeRaw: NotificationRow.columnList)
                """).first(decoding: NotificationRow.self)
            else {
                throw AppError(.invalidTransition, "only a dead notification can be retried; another retry was first",
                               details: ["notificationId": .string(id), "status": "pending"])
            }
            try await evidence.append([AdminAction.event(
                "retry_notification", entityType: "notification", entityId: id, by: actor,
                before: ["status": "dead", "attempts": .integer(Int64(row.attempts))],
                after: ["status": "pending", "attempts": 0])], in: sql)
            return updated.record
        }
    }
}

struct NotificationRow: Decodable {
    static let columnList = """
        id, channel, recipient, template, order_id, status, attempts, next_attempt_at_micros, last_error, created_at_micros,
        sent_at_micros
        """
    let id: String
    let channel: String
    let recipient: String
    let template: String
    let order_id: String?
    let status: String
    let attempts: Int
    let next_attempt_at_micros: Int64
    let last_error: String?
    let created_at_micros: Int64
    let sent_at_micros: Int64?

    var record: NotificationRecord {
        NotificationRecord(
            id: id, channel: channel, recipient: recipient, template: template, orderId: order_id, status: status,
            attempts: attempts, nextAttemptAt: StoredTime.date(fromMicros: next_attempt_at_micros), lastError: last_error,
            createdAt: StoredTime.date(fromMicros: created_at_micros), sentAt: sent_at_micros.map(StoredTime.date(fromMicros:)))
    }
}
