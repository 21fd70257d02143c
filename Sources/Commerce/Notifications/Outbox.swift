import BallastCore
import DomainValues
import Foundation
import SQLKit
import Storage


/// How a notification reaches its recipient.
public enum NotificationChannel: String, Sendable, CaseIterable {
    case email, push
}

/// A notification to send once the transaction that wrote it commits. Recipients are user ids and `data`
/// holds ids and figures only, never personal data.
public struct OutboxMessage: Sendable, Equatable {
    public let channel: NotificationChannel
    public let recipient: UserID
    public let template: String
    public let data: [String: JSONValue]
    public let order: OrderID?

    public init(channel: NotificationChannel, recipient: UserID, template: String, data: [String: JSONValue], order: OrderID?) {
        self.channel = channel
        self.recipient = recipient
        self.template = template
        self.data = data
        self.order = order
    }
}

/// The transactional outbox: notifications are rows written in the same transaction as what they announce,
/// so a committed order always has them and a rolled-back one never does. A dispatcher delivers them later.
public enum Outbox {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    /// Writes `messages` as pending notifications, due now on the database's clock (the one dispatchers compare
    /// with), in one statement.
    public static func enqueue(_ messages: [OutboxMessage], in sql: Transaction) async throws {
        guard !messages.isEmpty else { return }
        let now = Database.nowMicros(on: sql)
        // The trace of the request that wrote them: their delivery continues it.
        let traceParent = Traces.currentTraceParent()
        var query: SQLQueryString = """
            INSERT INTO notifications (id, channel, recipient, template, data, order_id, status, attempts,
                                       next_attempt_at_micros, created_at_micros, updated_at_micros, trace_parent) VALUES
            """
        for (index, message) in messages.enumerated() {
            let data = String(decoding: try encoder.encode(JSONValue.object(message.data)), as: UTF8.self)
            query += index == 0 ? " " : ", "
            query += """
                (\(bind: NotificationID().description), \(bind: message.channel.rawValue), \(bind: message.recipient.description),
                 \(bind: message.template), \(bind: data), \(bind: message.order?.description), 'pending', 0,
                 \(now), \(now), \(now), \(bind: traceParent))
                """
        }
        try await sql.raw(query).run()
    }
}
