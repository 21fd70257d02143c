import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// A notification taken from the outbox for delivery.
public struct OutboxNotification: Sendable, Equatable {
    public let id: String
    public let channel: NotificationChannel
    public let recipient: String
    public let template: String
    /// The stored JSON object text.
    public let data: String
    /// Attempts made before this one.
    public let attempts: Int
}

/// How one delivery attempt ended.
public enum DeliveryOutcome: Sendable, Equatable {
    case delivered
    /// The receiver asked to wait (429 with Retry-After, in seconds).
    case retryAfter(seconds: Int)
    case failed(String)
}

/// Where notifications go.
public protocol NotificationTransport: Sendable {
    func deliver(_ notification: OutboxNotification) async -> DeliveryOutcome
}

/// The default transport: one JSON log line per notification (`NOTIFY_WEBHOOK_URL` unset).
public struct LogTransport: NotificationTransport {
    let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    public func deliver(_ notification: OutboxNotification) async -> DeliveryOutcome {
        logger.info("notification", metadata: [
            "notificationId": .string(notification.id), "channel": .string(notification.channel.rawValue),
            "recipient": .string(notification.recipient), "template": .string(notification.template),
            "data": .string(notification.data),
        ])
        return .delivered
    }
}

/// POSTs each notification to `NOTIFY_WEBHOOK_URL` (SPEC §8): `{id, channel, recipient, template, data}` with
/// `Idempotency-Key: <id>`, so a receiver can drop the repeats that at-least-once delivery brings. 2xx is
/// delivered; 429 waits for its Retry-After (60 s when absent); anything else, or no answer within
/// ``timeout``, is a failed attempt.
public struct WebhookTransport: NotificationTransport {
    public static let defaultRetryAfterSeconds = 60

    let url: URL
    let timeout: Duration
    let client: HTTPClient

    public init(url: URL, timeout: Duration = .seconds(5), client: HTTPClient = .shared) {
        self.url = url
        self.timeout = timeout
        self.client = client
    }

    public func deliver(_ notification: OutboxNotification) async -> DeliveryOutcome {
        var request = HTTPClientRequest(url: url.absoluteString)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: notification.id)
        let data = (try? JSONDecoder().decode(JSONValue.self, from: Data(notification.data.utf8))) ?? .object([:])
        let body: JSONValue = .object([
            "id": .string(notification.id), "channel": .string(notification.channel.rawValue),
            "recipient": .string(notification.recipient), "template": .string(notification.template), "data": data,
        ])
        guard let encoded = try? JSONEncoder().encode(body) else { return .failed("the notification could not be encoded") }
        request.body = .bytes(ByteBuffer(data: encoded))
        let deadline = NIODeadline.now() + .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000
                                                         + timeout.components.attoseconds / 1_000_000_000)
        do {
            let response = try await client.execute(request, deadline: deadline)
            _ = try? await response.body.collect(upTo: 64 * 1024)
            switch response.status.code {
            case 200..<300:
                return .delivered
            case 429:
                let seconds = response.headers.first(name: "Retry-After").flatMap { Int($0) }
                return .retryAfter(seconds: max(0, seconds ?? Self.defaultRetryAfterSeconds))
            default:
                return .failed("the webhook answered \(response.status.code)")
            }
        } catch {
            return .failed("the webhook did not answer: \(error)")
        }
    }
}
